"""A seeded fuzzer for the running sam2_tracker node: hostile inputs in bursts, checks between.

Each burst sends a random mix of malformed and valid inputs from a separate node, as another
process on the DDS graph would: raw and compressed images, camera_info, rqt and RViz clicks,
every field of AddPrompt and RemoveObject (several calls at once), parameter updates of any
name and type, and lifecycle transitions while images stream. After each burst it restores
the parameters, brings the node back to active, and checks that valid frames are answered
with their own stamps and that the objects prompted before the burst are still tracked.

It counts what must never happen: crashes (the executor or worker died, or the callback guard
caught an exception: validation missed something), unanswered service calls, rejections
without a reason, and failed checks. `test_fuzz.py` runs a short seeded run in CI;
`bench/fuzz_node.py` runs a long one on demand.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
import itertools
import math
import threading
import time
import zlib

from builtin_interfaces.msg import Time
import cv2
from geometry_msgs.msg import Point, PointStamped
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
import numpy as np
from polling import wait_for
from rcl_interfaces.srv import SetParameters
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from tracker_fixtures import moving_frames

from sam2_ros.msg import Mask, PromptPoint, TrackedObjectArray
from sam2_ros.ros.image_conversion import array_to_image_msg
from sam2_ros.srv import AddPrompt, RemoveObject, ResetTracking
from sam2_ros.tracker.parameters import SPECS

FRAMES = moving_frames(40)  # 160x120, a textured square moving over a textured scene
WIDTH, HEIGHT = 160, 120
ANCHOR_BOX = [20.0, 30.0, 50.0, 60.0]  # the square on frame 0
CALL_TIMEOUT_S = 60.0
# Inputs by kind, with weights. Lifecycle transitions reload models: keep them rare.
KINDS = {
    'image': 14,
    'valid_frame': 8,
    'compressed': 8,
    'camera_info': 6,
    'click': 8,
    'add_prompt': 30,
    'remove_object': 6,
    'parameter': 12,
    'lifecycle': 1,
}
SHUTDOWNS = {
    Transition.TRANSITION_UNCONFIGURED_SHUTDOWN,
    Transition.TRANSITION_INACTIVE_SHUTDOWN,
    Transition.TRANSITION_ACTIVE_SHUTDOWN,
    Transition.TRANSITION_DESTROY,
}
NASTY_FLOATS = [math.nan, math.inf, -math.inf, 1e308, -1e308, 0.0, -1.0, 1e9, 5e-324]
NASTY_FLOATS32 = [math.nan, math.inf, -math.inf, 3e38, -3e38, 0.0, -1.0, 1e9, 1e-45]


@dataclass
class FuzzReport:
    """What a run sent and what went wrong; `ok` when nothing did."""

    inputs: int = 0
    bursts: int = 0
    kinds: Counter = field(default_factory=Counter)
    rejected: int = 0  # answered with success false and a reason: expected for bad input
    crashes: list[str] = field(default_factory=list)
    unanswered: list[str] = field(default_factory=list)
    reasonless: list[str] = field(default_factory=list)
    failed_checks: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether no crash, unanswered call, reasonless rejection or failed check occurred."""
        return not (self.crashes or self.unanswered or self.reasonless or self.failed_checks)

    def summary(self) -> str:
        """One paragraph for logs and assertion messages."""
        kinds = ', '.join(f'{k} {n}' for k, n in sorted(self.kinds.items()))
        lines = [
            f'{self.inputs} inputs in {self.bursts} bursts, {self.seconds:.1f} s ({kinds}); '
            f'{self.rejected} rejected with a reason; crashes {len(self.crashes)}, '
            f'unanswered {len(self.unanswered)}, reasonless rejections {len(self.reasonless)}, '
            f'failed checks {len(self.failed_checks)}'
        ]
        for name in ('crashes', 'unanswered', 'reasonless', 'failed_checks'):
            lines += [f'  {name}: {item}' for item in getattr(self, name)[:10]]
        return '\n'.join(lines)


class NodeFuzzer:
    """Fuzzes the tracker of a `TrackerHarness` from a node of its own."""

    def __init__(self, harness, seed: int, compressed: bool = False) -> None:
        """Attach to `harness` (its node must be active); `compressed`: its image transport."""
        self.harness = harness
        self.node = harness.node
        self.rng = np.random.default_rng(seed)
        self.compressed = compressed
        self.report = FuzzReport()
        self._caller = rclpy.create_node(
            'fuzz_caller', namespace=harness.namespace, context=harness.context
        )
        self._executor = SingleThreadedExecutor(context=harness.context)
        self._executor.add_node(self._caller)
        self._spinner = threading.Thread(target=self._executor.spin, daemon=True)
        self._spinner.start()
        self._lock = threading.Lock()
        self._answers: dict[int, TrackedObjectArray] = {}
        self._caller.create_subscription(
            TrackedObjectArray, 'tracked_objects', self._on_answer, 50
        )
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        create = self._caller.create_publisher
        self._pubs = {
            'image': create(Image, 'image', reliable),
            'compressed': create(CompressedImage, 'image/compressed', reliable),
            'camera_info': create(CameraInfo, 'camera_info', 10),
            'rqt': create(Point, 'image_mouse_left', 10),
            'rviz': create(PointStamped, '/clicked_point', 10),
        }
        tracker = f'{harness.namespace}/sam2_tracker'
        self._clients = {
            name: self._caller.create_client(srv, f'{tracker}/{name}')
            for name, srv in (
                ('add_prompt', AddPrompt),
                ('remove_object', RemoveObject),
                ('reset_tracking', ResetTracking),
                ('set_parameters', SetParameters),
                ('change_state', ChangeState),
                ('get_state', GetState),
            )
        }
        for name, client in self._clients.items():
            assert client.wait_for_service(timeout_sec=10.0), f'{name} is not available'
        frames = self._pubs['compressed' if compressed else 'image']
        assert wait_for(lambda: frames.get_subscription_count() > 0), 'the node does not listen'
        self._check_stamps = itertools.count(2_000_000)  # fresh, increasing check stamps
        self._defaults = {name: self.node.get_parameter(name).value for name in SPECS}
        self._guard_errors = self._caught()
        self._anchors: set[int] = set()
        self._cleaned_up = False

    # ------------------------------------------------------------------ running

    def run(self, inputs: int, burst: int = 50) -> FuzzReport:
        """Send `inputs` inputs in bursts of about `burst`; return the report."""
        start = time.monotonic()
        self._settle()
        while self.report.inputs < inputs:
            self._burst(min(burst, inputs - self.report.inputs))
            if not self.harness._thread.is_alive():
                break  # the node is gone: everything after would only time out
        self.report.seconds = time.monotonic() - start
        return self.report

    def close(self) -> None:
        """Stop the fuzzer's node."""
        self._executor.shutdown(timeout_sec=2.0)
        self._caller.destroy_node()

    def _burst(self, count: int) -> None:
        self.report.bursts += 1
        burst = self.report.bursts
        self._anchor()
        pending: list[tuple[str, object]] = []
        batch = int(self.rng.integers(1, 9))
        for _ in range(count):
            if not self.harness._thread.is_alive():
                self._crash_check(burst)
                return
            kind = self._choose_kind()
            self.report.inputs += 1
            self.report.kinds[kind] += 1
            call = getattr(self, f'_send_{kind}')()
            if call is not None:
                pending.append(call)
            if len(pending) >= batch or (kind == 'lifecycle' and pending):
                self._await(pending, burst)
                pending, batch = [], int(self.rng.integers(1, 9))
        self._await(pending, burst)
        self._settle()
        self._check(burst)

    def _choose_kind(self) -> str:
        names = list(KINDS)
        weights = np.array([KINDS[n] for n in names], float)
        return names[int(self.rng.choice(len(names), p=weights / weights.sum()))]

    def _await(self, pending: list, burst: int) -> None:
        """Wait for every call fired together; record unanswered and reasonless ones."""
        deadline = time.monotonic() + CALL_TIMEOUT_S
        for what, future in pending:
            self._wait(future, deadline - time.monotonic())
            if not future.done():
                self.report.unanswered.append(f'burst {burst}: {what}')
                continue
            self._judge(what, future.result(), burst)
        self._crash_check(burst)

    def _wait(self, future, timeout: float) -> None:
        """Wait until `future` is done, `timeout` passes or the node's executor is gone."""
        alive = self.harness._thread.is_alive
        wait_for(lambda: future.done() or not alive(), max(0.0, timeout))

    def _judge(self, what: str, response, burst: int) -> None:
        if isinstance(response, SetParameters.Response):
            outcomes = [(r.successful, r.reason) for r in response.results]
        elif isinstance(response, ChangeState.Response):
            return  # lifecycle_msgs has no reason field; the node logs why
        else:
            outcomes = [(response.success, response.message)]
        for success, reason in outcomes:
            if not success:
                self.report.rejected += 1
                if not reason.strip():
                    self.report.reasonless.append(f'burst {burst}: {what}')

    def _caught(self) -> int:
        guard = getattr(self.node, '_guard', None)  # None: a node without the safety net
        return 0 if guard is None else guard.errors

    def _crash_check(self, burst: int) -> None:
        if not self.harness._thread.is_alive():
            self.report.crashes.append(f'burst {burst}: the executor thread ended')
        errors = self._caught()
        if errors != self._guard_errors:
            self.report.crashes.append(
                f'burst {burst}: {errors - self._guard_errors} callback error(s) caught by '
                f'the guard, last: {self.node._guard.last_error}'
            )
            self._guard_errors = errors
        worker = self.node._worker
        if worker is not None and worker.failures:
            self.report.crashes.append(f'burst {burst}: {worker.failures} tracking failures')

    # ------------------------------------------------------------------ bursts' frame

    def _call(self, name: str, request, what: str = ''):
        return (what or name, self._clients[name].call_async(request))

    def _call_now(self, name: str, request):
        what, future = self._call(name, request)
        self._wait(future, CALL_TIMEOUT_S)
        if not future.done():
            self.report.unanswered.append(f'setup: {what}')
            return None
        return future.result()

    def _state(self) -> str:
        response = self._call_now('get_state', GetState.Request())
        return '' if response is None else response.current_state.label

    def _transition(self, transition_id: int) -> None:
        request = ChangeState.Request()
        request.transition.id = transition_id
        self._call_now('change_state', request)

    def _settle(self) -> None:
        """Restore the parameters and bring the node back to active."""
        changed = [
            Parameter(name, value=value).to_parameter_msg()
            for name, value in self._defaults.items()
            if self.node.get_parameter(name).value != value and not SPECS[name].read_only
        ]
        state = self._state()
        if state == 'active' and any(SPECS[p.name].at_configure for p in changed):
            self._transition(Transition.TRANSITION_DEACTIVATE)
            state = 'inactive'
        if state == 'inactive' and any(SPECS[p.name].at_configure for p in changed):
            self._transition(Transition.TRANSITION_CLEANUP)
            self._cleaned_up = True
            state = 'unconfigured'
        if changed:
            response = self._call_now('set_parameters', SetParameters.Request(parameters=changed))
            if response is not None and not all(r.successful for r in response.results):
                reasons = [r.reason for r in response.results if not r.successful]
                self.report.failed_checks.append(f'restoring parameters failed: {reasons}')
        if state == 'unconfigured':
            self._transition(Transition.TRANSITION_CONFIGURE)
            state = 'inactive'
        if state == 'inactive':
            self._transition(Transition.TRANSITION_ACTIVATE)
        if self._state() != 'active':
            self.report.failed_checks.append(f'the node is {self._state()}, not active')

    def _anchor(self) -> None:
        """Start the burst from one object prompted on a valid frame."""
        reset = self._call_now('reset_tracking', ResetTracking.Request())
        if reset is None or not reset.success:
            self.report.failed_checks.append(f'reset failed: {reset}')
        self._valid_frame(0)
        response = self._call_now('add_prompt', AddPrompt.Request(box=ANCHOR_BOX))
        if response is None or not response.success:
            self.report.failed_checks.append(f'the anchor prompt failed: {response}')
            self._anchors = set()
        else:
            self._anchors = {response.object_id}
        self._cleaned_up = False

    def _check(self, burst: int) -> None:
        """Check that valid frames are answered with their stamps and the anchor is tracked."""
        for index in range(3):
            stamp, answer = self._valid_frame(index + 1)
            if answer is None:
                self.report.failed_checks.append(f'burst {burst}: frame {stamp} unanswered')
                continue
            if answer.header.stamp.sec != stamp:
                self.report.failed_checks.append(f'burst {burst}: wrong stamp for {stamp}')
            ids = {obj.id for obj in answer.objects}
            if not self._cleaned_up and not self._anchors <= ids:
                self.report.failed_checks.append(
                    f'burst {burst}: objects {sorted(self._anchors - ids)} are gone'
                )
        self._crash_check(burst)

    def _valid_frame(self, index: int):
        """Publish a valid frame with a fresh stamp; return (stamp, its answer or None)."""
        stamp = next(self._check_stamps)
        self._publish_frame(FRAMES[index % len(FRAMES)], stamp)

        def answered() -> bool:
            with self._lock:
                return stamp in self._answers

        if not wait_for(answered, CALL_TIMEOUT_S):
            # A stream of hostile images may have displaced it: give it one more try.
            self._publish_frame(FRAMES[index % len(FRAMES)], stamp)
            if not wait_for(answered, CALL_TIMEOUT_S):
                return stamp, None
        with self._lock:
            return stamp, self._answers[stamp]

    def _publish_frame(self, rgb: np.ndarray, sec: int) -> None:
        if self.compressed:
            ok, data = cv2.imencode('.png', cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
            msg = CompressedImage(format='png', data=data.tobytes())
        else:
            msg = array_to_image_msg(np.ascontiguousarray(rgb), 'rgb8')
        msg.header.stamp = Time(sec=sec)
        msg.header.frame_id = 'camera'
        self._pubs['compressed' if self.compressed else 'image'].publish(msg)

    def _on_answer(self, msg: TrackedObjectArray) -> None:
        with self._lock:
            self._answers[msg.header.stamp.sec] = msg
            if len(self._answers) > 500:
                del self._answers[min(self._answers)]

    # ------------------------------------------------------------------ random values

    def _pick(self, options):
        return options[int(self.rng.integers(len(options)))]

    def _coin(self, p: float = 0.5) -> bool:
        return bool(self.rng.random() < p)

    def _number(self, nasty=NASTY_FLOATS) -> float:
        if self._coin(0.3):
            return float(self._pick(nasty))
        return float(self.rng.uniform(-50, 210))

    def _number32(self) -> float:
        return self._number(NASTY_FLOATS32)

    def _uint(self, bits: int = 32) -> int:
        if self._coin(0.3):
            return int(self._pick([0, 1, 2**bits - 1, 2 ** (bits - 1), 65535]))
        return int(self.rng.integers(0, 400))

    def _stamp(self) -> Time:
        if self._coin(0.5):
            return Time()
        return Time(sec=int(self.rng.integers(0, 2**31)), nanosec=int(self.rng.integers(0, 1e9)))

    def _text(self) -> str:
        return self._pick(['', 'cup', 'ü' * 300, '\x00nul', 'x' * 5000, '{"a": 1}', '../../etc'])

    # ------------------------------------------------------------------ inputs

    def _send_valid_frame(self):
        self._publish_frame(self._pick(FRAMES), int(self.rng.integers(0, 2**31)))

    def _send_image(self):
        rgb = self._pick(FRAMES)
        msg = array_to_image_msg(np.ascontiguousarray(rgb), 'rgb8')
        mutation = int(self.rng.integers(7))
        if mutation == 0:
            msg.encoding = self._pick(['yuv422', '', 'rgb16', '32FC1', 'bgr8 ', 'mono16'])
        elif mutation == 1:
            msg.width, msg.height = self._uint(), self._uint()
        elif mutation == 2:
            msg.step = self._uint()
        elif mutation == 3:
            msg.data = bytes(msg.data)[: int(self.rng.integers(0, len(msg.data)))]
        elif mutation == 4:
            msg.width, msg.height, msg.step = 2**31 - 1, 2**31 - 1, 2**32 - 1
        elif mutation == 5:
            msg.encoding = self._pick(['bgr8', 'mono8', 'rgba8', 'bgra8'])  # valid, odd sizes
            channels = {'bgr8': 3, 'mono8': 1, 'rgba8': 4, 'bgra8': 4}[msg.encoding]
            msg.width, msg.height = int(self.rng.integers(1, 40)), int(self.rng.integers(1, 40))
            msg.step = msg.width * channels
            msg.data = self.rng.integers(0, 256, msg.step * msg.height, dtype=np.uint8).tobytes()
        msg.header.stamp = self._stamp()
        msg.header.frame_id = self._text()[:100]
        self._pubs['image'].publish(msg)

    def _send_compressed(self):
        rgb = self._pick(FRAMES)
        ok, png = cv2.imencode('.png', rgb)
        ok, jpeg = cv2.imencode('.jpg', rgb)
        png, jpeg = png.tobytes(), jpeg.tobytes()
        choice = int(self.rng.integers(6))
        if choice == 0:
            data, fmt = png[: int(self.rng.integers(0, len(png)))], 'png'
        elif choice == 1:
            data, fmt = jpeg[: int(self.rng.integers(0, len(jpeg)))], 'jpeg'
        elif choice == 2:
            data, fmt = _png_claiming(self._uint(), self._uint()), 'png'
        elif choice == 3:
            data = self.rng.integers(0, 256, int(self.rng.integers(0, 300)), np.uint8).tobytes()
            fmt = self._pick(['png', 'jpeg', 'tiff', '', 'rgb8; jpeg compressed bgr8'])
        elif choice == 4:
            data, fmt = (png, 'jpeg') if self._coin() else (jpeg, 'png')  # mislabelled
        else:
            corrupt = bytearray(jpeg)
            for _ in range(10):
                corrupt[int(self.rng.integers(2, len(corrupt)))] = int(self.rng.integers(256))
            data, fmt = bytes(corrupt), 'jpeg'
        msg = CompressedImage(format=fmt, data=data)
        msg.header.stamp = self._stamp()
        self._pubs['compressed'].publish(msg)

    def _send_camera_info(self):
        info = CameraInfo(width=self._uint(), height=self._uint())
        info.header.frame_id = self._pick(['camera', 'map', '', self._text()[:50]])
        info.distortion_model = self._pick(
            ['plumb_bob', 'rational_polynomial', 'equidistant', '', 'kannala_brandt', 'x' * 99]
        )
        info.d = [self._number() for _ in range(int(self.rng.integers(0, 20)))]
        if self._coin(0.7):
            info.k = [100.0, 0.0, 80.0, 0.0, 100.0, 60.0, 0.0, 0.0, 1.0]
        else:
            info.k = [self._number() for _ in range(9)]
        self._pubs['camera_info'].publish(info)

    def _send_click(self):
        if self._coin():
            self._pubs['rqt'].publish(Point(x=self._number(), y=self._number(), z=self._number()))
            return
        click = PointStamped()
        click.header.frame_id = self._pick(['camera', 'map', ''])
        click.point.x, click.point.y, click.point.z = (self._number() for _ in range(3))
        self._pubs['rviz'].publish(click)

    def _send_add_prompt(self):
        request = AddPrompt.Request()
        if self._coin(0.15):  # a valid prompt, sometimes stamped or on a canvas
            request.box = [float(v) for v in self.rng.uniform(0, 40, 2)] + [
                float(v) for v in self.rng.uniform(60, 120, 2)
            ]
            if self._coin(0.3) and self._anchors:
                request.object_id = self._pick(sorted(self._anchors))
            if self._coin(0.3):
                request.canvas_width, request.canvas_height = 320, 240
                request.box = [2 * v for v in request.box]
            return self._call('add_prompt', request, 'valid add_prompt')
        request.object_id = self._uint() if self._coin(0.3) else 0
        request.points = [
            PromptPoint(
                x=self._number32(),
                y=self._number32(),
                label=int(self.rng.integers(0, 3) if self._coin(0.8) else self.rng.integers(256)),
            )
            for _ in range(int(self.rng.integers(0, 5)))
        ]
        if self._coin(0.5):
            request.box = [self._number32() for _ in range(int(self.rng.integers(0, 7)))]
        if self._coin(0.3):
            request.mask = self._mask()
        request.label = self._text()
        request.frame_stamp = self._stamp()
        if self._coin(0.3):
            request.canvas_width, request.canvas_height = self._uint(), self._uint()
        return self._call('add_prompt', request, 'fuzzed add_prompt')

    def _mask(self) -> Mask:
        choice = int(self.rng.integers(5))
        if choice == 0:  # huge claims that even add up
            side = 1 << int(self.rng.integers(14, 31))
            return Mask(height=side, width=side, counts=[side * side // 2**32 + 1] * 4)
        if choice == 1:  # right size, counts that do not cover it
            return Mask(height=HEIGHT, width=WIDTH, counts=[int(self.rng.integers(0, 5000))])
        if choice == 2:  # another frame's size
            height, width = int(self.rng.integers(1, 300)), int(self.rng.integers(1, 300))
            return Mask(height=height, width=width, counts=[height * width])
        if choice == 3:  # an empty mask of the right size
            return Mask(height=HEIGHT, width=WIDTH, counts=[HEIGHT * WIDTH])
        counts = [int(c) for c in self.rng.integers(0, 2**32, int(self.rng.integers(1, 50)))]
        return Mask(height=self._uint(), width=self._uint(), counts=counts)

    def _send_remove_object(self):
        object_id = self._uint()
        if object_id in self._anchors:
            object_id += 1000
        return self._call('remove_object', RemoveObject.Request(object_id=object_id))

    def _send_parameter(self):
        name = (
            self._pick(list(SPECS))
            if self._coin(0.8)
            else self._pick(
                ['nope', 'keyframe_intervall', '', 'a.b.c', 'qos_overrides./image.subscription']
            )
        )
        value = self._parameter_value(name)
        try:
            message = Parameter(name, value=value).to_parameter_msg()
        except (TypeError, ValueError):
            return None
        request = SetParameters.Request(parameters=[message])
        return self._call('set_parameters', request, f'set {name}={value!r:.40}')

    def _parameter_value(self, name: str):
        spec = SPECS.get(name)
        choice = int(self.rng.integers(6))
        if spec is not None and choice < 2 and spec.choices:
            return self._pick(list(spec.choices))
        if spec is not None and choice < 3 and spec.low is not None:
            low, high = spec.low, spec.high
            value = float(self.rng.uniform(low, high))
            return int(value) if isinstance(spec.default, int) else value
        return self._pick(
            [
                True,
                -1,
                0,
                2**62,
                math.nan,
                math.inf,
                -0.5,
                1.0e9,
                '',
                'person,car',
                [1, 2],
                ['a'],
                [1.5],
            ]
        )

    def _send_lifecycle(self):
        transition = int(self.rng.integers(0, 64))
        if transition in SHUTDOWNS:
            transition = Transition.TRANSITION_DEACTIVATE
        if transition == Transition.TRANSITION_CLEANUP:
            self._cleaned_up = True
        request = ChangeState.Request()
        request.transition.id = transition
        return self._call('change_state', request, f'transition {transition}')


def _png_claiming(width: int, height: int) -> bytes:
    """Return a PNG whose header claims `width`x`height`, with a token of data."""
    ihdr = width.to_bytes(4, 'big') + height.to_bytes(4, 'big') + bytes([8, 2, 0, 0, 0])
    chunk = (
        len(ihdr).to_bytes(4, 'big')
        + b'IHDR'
        + ihdr
        + zlib.crc32(b'IHDR' + ihdr).to_bytes(4, 'big')
    )
    idat = zlib.compress(b'\x00' * 64)
    body = (
        len(idat).to_bytes(4, 'big')
        + b'IDAT'
        + idat
        + zlib.crc32(b'IDAT' + idat).to_bytes(4, 'big')
    )
    return b'\x89PNG\r\n\x1a\n' + chunk + body
