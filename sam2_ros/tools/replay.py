"""sam2_replay: play a rosbag2 into a running sam2_tracker, apply a prompt script, record.

Playback publishes the bag's camera topics (images, raw or compressed, camera_info, /tf and
/tf_static; a depth image topic, one with "depth" in its name, along with the colour one)
and /clock (the bag's log time of each message, for nodes with
use_sim_time:=true):
- at the recorded rate, or `--rate` times it; prompts are sent right after the frame they
  name is published, stamped with that frame (the node carries them forward if it has moved
  on), as an operator clicking on the live stream would. Playback does not wait for their
  answers, as a camera would not; only an event that names an object an earlier call is
  still creating (a remove, a refinement, a reset) waits for the calls before it;
- in `--lockstep`: each image is published only after the node answered the previous one
  (its tracked_objects with the same header stamp), and the frame's prompts are applied
  after its answer, before the next image. Nothing is dropped and the results do not depend
  on timing, so two runs give identical outputs: the mode for regression tests.

Recording (`--record DIR`) writes the node's outputs (tracked_objects, /diagnostics and any
`--record-topic`) to a new bag as they arrive, stamped with their wall-clock receipt time,
plus /sam2_replay/published (std_msgs/Header: the source stamp of every image, at its
publication time) so that sam2_evaluate can measure latency and count unanswered frames.
metadata.yaml stores the input bag, the mode and which node object follows which
ground-truth object (from the script's `ground_truth` keys). Ctrl-C or SIGTERM stop the
replay and close the bag: what was recorded stays readable.

Messages are published as the bag stores them (CDR bytes, never re-encoded); their types
must be importable (`source` the workspaces that define them).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field
import importlib
import json
from pathlib import Path
import signal
import sys
import time

import yaml

from sam2_ros.core.stamps import stamp_ns
from sam2_ros.tools.bag_io import (
    IMAGE_TYPES,
    PUBLISHED_FRAMES_TOPIC,
    BagError,
    BagReader,
    BagWriter,
    qos_profile,
)
from sam2_ros.tools.cli import positive_float, ros_name, ros_name_problem
from sam2_ros.tools.prompt_script import (
    PromptScript,
    PromptScriptError,
    ScriptEvent,
    load_prompt_script,
)

PLAYED_TYPES = (*IMAGE_TYPES, 'sensor_msgs/msg/CameraInfo', 'tf2_msgs/msg/TFMessage')
DEFAULT_RECORDED = ('/diagnostics',)  # besides the tracked_objects answers
QOS_KEYS = {'reliability', 'durability', 'history', 'depth'}


class ReplayError(RuntimeError):
    """The replay cannot go on; the message says why."""


def message_class(msgtype: str):
    """Return the rclpy class of 'pkg/msg/Type'; raise BagError when it is not installed."""
    try:
        package, kind, name = msgtype.split('/')
        return getattr(importlib.import_module(f'{package}.{kind}'), name)
    except (ValueError, ImportError, AttributeError):
        raise BagError(
            f'unknown message type {msgtype}: its Python interfaces are not installed here '
            '(source the workspace that defines it, or leave its topic out)'
        ) from None


def load_qos_overrides(path: Path) -> dict[str, dict]:
    """Read a `ros2 bag play --qos-profile-overrides-path` YAML: {topic: {reliability, ...}}."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding='utf-8')) or {}
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as error:
        raise BagError(f'{path}: cannot read the QoS overrides: {error}') from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise BagError(f'{path}: QoS overrides map each topic to a mapping of policies')
    for topic, policies in data.items():
        unknown = set(policies) - QOS_KEYS
        if unknown:
            raise BagError(
                f'{path}: {topic}: unsupported QoS keys {sorted(unknown)} '
                f'(supported: {sorted(QOS_KEYS)})'
            )
    return data


def _rclpy_qos(policies: dict):
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

    try:
        return QoSProfile(
            depth=int(policies.get('depth', 10)),
            history=HistoryPolicy[str(policies.get('history', 'keep_last')).upper()],
            reliability=ReliabilityPolicy[str(policies.get('reliability', 'reliable')).upper()],
            durability=DurabilityPolicy[str(policies.get('durability', 'volatile')).upper()],
        )
    except (KeyError, ValueError) as error:
        raise BagError(f'invalid QoS policy value {error} in {policies}') from None


@dataclass
class ReplayOptions:
    """What to play, how, and what to record."""

    bag: Path
    lockstep: bool = False
    rate: float = 1.0
    node: str = '/sam2_tracker'  # the tracker's fully qualified name (services below it)
    tracked_objects: str = '/tracked_objects'
    topics: list[str] | None = None  # played topics; None: camera topics (PLAYED_TYPES)
    remap: dict[str, str] = field(default_factory=dict)
    clock: bool = True
    script: PromptScript | None = None
    reset_first: bool = True  # reset_tracking before playing when there is a script
    record: Path | None = None
    record_topics: list[str] = field(default_factory=list)  # besides DEFAULT_RECORDED
    storage: str = 'mcap'
    qos_overrides: dict[str, dict] = field(default_factory=dict)
    frame_timeout: float = 60.0  # lockstep: seconds to wait for an answer before moving on
    connect_timeout: float = 60.0
    max_frames: int = 0  # 0 = every image


@dataclass
class PromptLog:
    """The outcome of one scripted event."""

    frame: int
    event: ScriptEvent
    success: bool
    message: str
    object_id: int = 0


@dataclass
class ReplayResult:
    """What happened: frames, answers (rclpy TrackedObjectArray by frame index), prompts."""

    image_topic: str
    stamps_ns: list[int] = field(default_factory=list)  # header stamp of each published frame
    answers: dict[int, object] = field(default_factory=dict)
    latency_ms: dict[int, float] = field(default_factory=dict)
    prompts: list[PromptLog] = field(default_factory=list)
    assignment: dict[int, dict] = field(default_factory=dict)  # gt id -> ids, from_frame
    wall_s: float = 0.0
    interrupted: bool = False
    recorded: dict[str, int] = field(default_factory=dict)  # topic -> messages recorded

    @property
    def unanswered(self) -> list[int]:
        """Indices of published frames the node never answered."""
        return [i for i in range(len(self.stamps_ns)) if i not in self.answers]


class _TerminatedError(Exception):
    pass


class Replayer:
    """Plays one bag into the ROS graph; see the module docstring."""

    def __init__(self, options: ReplayOptions, progress: Callable | None = None) -> None:
        self.options = options
        self.progress = progress or (lambda done, total: None)
        self._ids: dict[str, int] = {}  # script names -> node ids
        self._pending: list[tuple[str, object, Callable, float]] = []  # calls in flight
        self._stalled = 0.0  # seconds playback paused for calls an event depended on
        # header stamp -> (frame index, monotonic publication time)
        self._published_at: dict[int, tuple[int, float]] = {}
        self._image_topic = ''

    def run(self) -> ReplayResult:
        """Play the bag; return the result (also when interrupted with Ctrl-C or SIGTERM)."""
        import rclpy
        import rclpy.context
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.signals import SignalHandlerOptions

        options = self.options
        with BagReader(options.bag) as reader:
            image_topic, played = self._choose_topics(reader)
            self._image_topic = image_topic
            classes = {topic: message_class(reader.topics[topic]) for topic in played}
            total = reader.message_counts[image_topic]
            if options.max_frames:
                total = min(total, options.max_frames)
            # Check the script against the bag before anything is recorded or reset.
            schedule = self._schedule(reader, image_topic, total)
            context = rclpy.context.Context()
            # SIGINT raises KeyboardInterrupt here and SIGTERM _TerminatedError, wherever the
            # replay is: both end it the same way, closing the recorded bag. args=[]: the
            # command line is argparse's; rcl would take a FROM:=TO in sys.argv for a
            # (deprecated) global remap rule.
            rclpy.init(args=[], context=context, signal_handler_options=SignalHandlerOptions.NO)
            previous_term = signal.signal(signal.SIGTERM, _raise_interrupt)
            # Explicitly: Python leaves SIGINT ignored when it starts with it ignored (a
            # background job of a script), and Ctrl-C must end the replay all the same.
            previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
            writer = None
            try:
                self.node = rclpy.create_node('sam2_replay', context=context)
                self.executor = SingleThreadedExecutor(context=context)
                self.executor.add_node(self.node)
                self.result = ReplayResult(self._out_name(image_topic))
                if options.record:
                    writer = BagWriter(options.record, options.storage).__enter__()
                self._setup(reader, classes, writer)
                self._wait_for_node()
                if options.script is not None and options.reset_first:
                    self._call('reset_tracking', self._srv.ResetTracking.Request())
                self._play(reader, image_topic, played, total, schedule)
            except (KeyboardInterrupt, _TerminatedError):
                self.result.interrupted = True
            finally:
                signal.signal(signal.SIGTERM, previous_term)
                signal.signal(signal.SIGINT, previous_int)
                if writer is not None:
                    self._finish_recording(writer)
                rclpy.try_shutdown(context=context)
        return self.result

    # ---------------------------------------------------------------------------- setup

    def _choose_topics(self, reader: BagReader) -> tuple[str, list[str]]:
        topics = reader.topics
        if self.options.topics:
            reader.require_topics(self.options.topics, 'was asked for')
            played = list(self.options.topics)
        else:
            played = [t for t, msgtype in sorted(topics.items()) if msgtype in PLAYED_TYPES]
        images = [t for t in played if topics[t] in IMAGE_TYPES]
        colour = [t for t in images if 'depth' not in t.lower()]
        if len(images) > 1 and len(colour) == 1:
            images = colour  # the depth images travel along with the colour stream
        if len(images) != 1:
            listing = ', '.join(f'{t} ({m})' for t, m in sorted(topics.items())) or 'none'
            raise BagError(
                f'{reader.path}: expected one image topic to play, found '
                f'{len(images)} ({", ".join(images) or "none"}); choose with --topics '
                f'(topics: {listing})'
            )
        for topic in played:
            problem = ros_name_problem(self._out_name(topic))
            if problem:
                raise BagError(
                    f'{reader.path}: topic {self._out_name(topic)!r} is not a valid ROS name '
                    f'({problem}): play it under another name with --remap FROM:=TO'
                )
        return images[0], played

    def _out_name(self, topic: str) -> str:
        return self.options.remap.get(topic, topic)

    def _setup(self, reader: BagReader, classes: dict, writer: BagWriter | None) -> None:
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from rosgraph_msgs.msg import Clock

        from sam2_ros.msg import TrackedObjectArray
        import sam2_ros.srv as srv

        self._srv = srv
        node, options = self.node, self.options
        self._publishers = {}
        for topic, cls in classes.items():
            policies = options.qos_overrides.get(topic, {})
            if topic == '/tf_static':
                policies = {'durability': 'transient_local', **policies}
            self._publishers[topic] = node.create_publisher(
                cls, self._out_name(topic), _rclpy_qos(policies)
            )
        self._clock_pub = node.create_publisher(Clock, '/clock', 10) if options.clock else None
        self._writer = writer
        reliable = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        self._answers_sub = node.create_subscription(
            TrackedObjectArray, options.tracked_objects, self._on_answer, reliable, raw=True
        )
        self._clients = {
            name: node.create_client(srv_type, f'{options.node}/{name}')
            for name, srv_type in (
                ('add_prompt', srv.AddPrompt),
                ('remove_object', srv.RemoveObject),
                ('reset_tracking', srv.ResetTracking),
            )
        }
        if writer is None:
            return
        writer.set_custom_data('input_bag', str(Path(options.bag).resolve()))
        writer.set_custom_data(
            'mode', 'lockstep' if options.lockstep else f'rate {options.rate:g}'
        )
        if options.script is not None:
            writer.set_custom_data('prompt_script', options.script.path)
        writer.add_topic(options.tracked_objects, 'sam2_ros/msg/TrackedObjectArray')
        writer.add_topic(PUBLISHED_FRAMES_TOPIC, 'std_msgs/msg/Header')
        # The answers are recorded as they arrive (_on_answer): never a second time.
        answers = node.resolve_topic_name(options.tracked_objects)
        extra = {node.resolve_topic_name(t) for t in (*DEFAULT_RECORDED, *options.record_topics)}
        for topic in sorted(extra - {answers}):
            self._record_topic(topic)

    def _record_topic(self, topic: str) -> None:
        name = self.node.resolve_topic_name(topic)
        msgtype = self._topic_type(name)
        cls = message_class(msgtype)
        self._writer.add_topic(name, msgtype, qos_profile('reliable'))

        def write(raw: bytes) -> None:
            self._writer.write_raw(name, time.time_ns(), raw)

        self.node.create_subscription(cls, name, write, 10, raw=True)

    def _topic_type(self, name: str) -> str:
        known = {'/diagnostics': 'diagnostic_msgs/msg/DiagnosticArray'}
        if name in known:
            return known[name]
        if name.endswith('label_image') or name.endswith('overlay'):
            return 'sensor_msgs/msg/Image'
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            for topic, types in self.node.get_topic_names_and_types():
                if topic == name and types:
                    return types[0]
            self.executor.spin_once(timeout_sec=0.1)
        raise ReplayError(f'cannot record {name}: no publisher announces its type')

    def _wait_for_node(self) -> None:
        options = self.options
        image_pub = self._publishers[self._image_topic]
        deadline = time.monotonic() + options.connect_timeout
        checks = {
            f'service {options.node}/add_prompt': lambda: self._clients[
                'add_prompt'
            ].service_is_ready(),
            f'subscriber on {image_pub.topic_name}': lambda: (
                image_pub.get_subscription_count() > 0
            ),
            f'publisher of {self._answers_sub.topic_name}': lambda: (
                self.node.count_publishers(self._answers_sub.topic_name) > 0
            ),
        }
        while time.monotonic() < deadline:
            missing = [name for name, check in checks.items() if not check()]
            if not missing:
                return
            self.executor.spin_once(timeout_sec=0.1)
        raise ReplayError(
            f'the tracker did not appear within {options.connect_timeout:g} s: no '
            f'{" and no ".join(missing)}. Is sam2_tracker running and active in this '
            'ROS_DOMAIN_ID, with its image topic remapped to the played one '
            '(e.g. -r image:=/camera/image_raw, or --remap here)?'
        )

    # -------------------------------------------------------------------------- playback

    def _schedule(self, reader: BagReader, image_topic: str, total: int) -> dict:
        """Return the script's events by frame index; read the image stamps only if needed."""
        script = self.options.script
        if script is None:
            return {}
        stamps = []
        if script.uses_time:
            for message in reader.messages([image_topic]):
                stamps.append(stamp_ns(message.msg.header.stamp))
                if len(stamps) >= total:
                    break
        return script.resolve(total, stamps)

    def _play(
        self, reader: BagReader, image_topic: str, played: list[str], total: int, schedule: dict
    ) -> None:
        options, result = self.options, self.result
        start_wall = time.monotonic()
        first_log = None
        for message in reader.messages(played):
            if first_log is None:
                first_log = message.log_time_ns
            if not options.lockstep:
                self._sleep_until(
                    start_wall
                    + self._stalled
                    + (message.log_time_ns - first_log) / 1e9 / options.rate
                )
            if self._clock_pub is not None:
                self._publish_clock(message.log_time_ns)
            self._publishers[message.topic].publish(message.raw)
            if message.topic != image_topic:
                continue
            index = len(result.stamps_ns)
            stamp = stamp_ns(message.msg.header.stamp)
            result.stamps_ns.append(stamp)
            self._published_at[stamp] = (index, time.monotonic())
            if self._writer is not None:
                self._record_published(message.msg.header)
            if options.lockstep:
                self._wait_answer(index, options.frame_timeout)
            for event in schedule.get(index, []):
                self._apply(event, index, message.msg.header.stamp)
            self.progress(index + 1, total)
            if index + 1 >= total:
                break
        self._settle()
        if not options.lockstep and result.stamps_ns:  # the node always answers the newest
            self._wait_answer(len(result.stamps_ns) - 1, options.frame_timeout)
        result.wall_s = time.monotonic() - start_wall
        self._spin_for(0.2)  # late diagnostics

    def _sleep_until(self, wall: float) -> None:
        while (left := wall - time.monotonic()) > 0:
            self.executor.spin_once(timeout_sec=min(left, 0.05))
            self._take_answers()

    def _spin_for(self, seconds: float) -> None:
        self._sleep_until(time.monotonic() + seconds)

    def _publish_clock(self, log_time_ns: int) -> None:
        from rosgraph_msgs.msg import Clock

        msg = Clock()
        msg.clock.sec, msg.clock.nanosec = divmod(log_time_ns, 1_000_000_000)
        self._clock_pub.publish(msg)

    def _record_published(self, header) -> None:
        from rclpy.serialization import serialize_message
        from std_msgs.msg import Header

        ros_header = Header(frame_id=header.frame_id)
        ros_header.stamp.sec, ros_header.stamp.nanosec = header.stamp.sec, header.stamp.nanosec
        self._writer.write_raw(
            PUBLISHED_FRAMES_TOPIC, time.time_ns(), serialize_message(ros_header)
        )

    def _on_answer(self, raw: bytes) -> None:
        from rclpy.serialization import deserialize_message

        from sam2_ros.msg import TrackedObjectArray

        received = time.monotonic()
        if self._writer is not None:
            self._writer.write_raw(self.options.tracked_objects, time.time_ns(), raw)
        msg = deserialize_message(raw, TrackedObjectArray)
        stamp = stamp_ns(msg.header.stamp)
        published = self._published_at.get(stamp)
        if published is None:
            return  # an answer to a frame this replay did not publish
        index, sent = published
        self.result.answers[index] = msg
        self.result.latency_ms[index] = 1000.0 * (received - sent)

    def _wait_answer(self, index: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while index not in self.result.answers and time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=0.05)

    # --------------------------------------------------------------------------- prompts

    def _send(self, name: str, request, on_answer: Callable, wait: bool) -> None:
        """Call a tracker service; wait for the answer, or take it when it comes."""
        future = self._clients[name].call_async(request)
        deadline = time.monotonic() + max(30.0, self.options.frame_timeout)
        self._pending.append((name, future, on_answer, deadline))
        if wait:
            self._settle()

    def _settle(self) -> None:
        """Wait for every call in flight and take its answer.

        The stream pauses meanwhile: the frames after it keep their spacing (a burst of late
        frames would only measure the replay), so the wait is added to the schedule.
        """
        start = time.monotonic()
        while self._pending:
            self.executor.spin_once(timeout_sec=0.05)
            self._take_answers()
        self._stalled += time.monotonic() - start

    def _take_answers(self) -> None:
        still = []
        for name, future, on_answer, deadline in self._pending:
            if future.done():
                on_answer(future.result())
            elif time.monotonic() > deadline:
                raise ReplayError(f'{self.options.node}/{name} did not answer in time')
            else:
                still.append((name, future, on_answer, deadline))
        self._pending = still

    def _call(self, name: str, request):
        answers = []
        self._send(name, request, answers.append, wait=True)
        return answers[0]

    def _object_id(self, target) -> int:
        return self._ids.get(target, 0) if isinstance(target, str) else int(target)

    def _apply(self, event: ScriptEvent, index: int, stamp) -> None:
        srv = self._srv
        # In lockstep every call is waited for; at a rate only what depends on earlier calls.
        if self.options.lockstep or event.action != 'add' or event.target is not None:
            self._settle()
        wait = self.options.lockstep
        if event.action == 'reset':

            def reset_done(response) -> None:
                self._ids.clear()
                self._log(index, event, response.success, response.message)

            self._send('reset_tracking', srv.ResetTracking.Request(), reset_done, wait)
            return
        if event.action == 'remove':
            object_id = self._object_id(event.target)

            def remove_done(response) -> None:
                self._log(index, event, response.success, response.message, object_id)

            request = srv.RemoveObject.Request(object_id=object_id)
            self._send('remove_object', request, remove_done, wait)
            return
        from sam2_ros.msg import PromptPoint

        request = srv.AddPrompt.Request(
            object_id=self._object_id(event.target) if event.target is not None else 0,
            label=event.label,
            points=[PromptPoint(x=x, y=y, label=label) for x, y, label in event.points],
            box=list(event.box) if event.box is not None else [],
        )
        request.frame_stamp.sec, request.frame_stamp.nanosec = stamp.sec, stamp.nanosec
        self._send('add_prompt', request, lambda r: self._added(event, index, r), wait)

    def _added(self, event: ScriptEvent, index: int, response) -> None:
        self._log(index, event, response.success, response.message, response.object_id)
        if not response.success:
            return
        if event.name:
            self._ids[event.name] = response.object_id
        if event.ground_truth is not None:
            entry = self.result.assignment.setdefault(
                event.ground_truth, {'ids': [], 'from_frame': index + 1}
            )
            if response.object_id not in entry['ids']:
                entry['ids'].append(response.object_id)

    def _log(self, index, event, success, message, object_id=0) -> None:
        self.result.prompts.append(PromptLog(index, event, bool(success), message, object_id))

    def _finish_recording(self, writer: BagWriter) -> None:
        result = self.result
        try:
            writer.set_custom_data(
                'assignment', {str(k): v for k, v in sorted(result.assignment.items())}
            )
            writer.set_custom_data('frames_published', str(len(result.stamps_ns)))
            writer.set_custom_data('interrupted', str(result.interrupted).lower())
        finally:
            writer.close()
            result.recorded = dict(writer.counts)


def _raise_interrupt(signum, frame):
    raise _TerminatedError()


def _parse_remaps(values: list[str]) -> dict[str, str]:
    remap = {}
    for value in values:
        source, sep, target = value.partition(':=')
        if not sep or not source or not target:
            raise BagError(f'--remap takes FROM:=TO, got {value!r}')
        problem = ros_name_problem(target)
        if problem:
            raise BagError(f'--remap {value!r}: {target!r} is not a valid ROS name: {problem}')
        remap[source] = target
    return remap


def _parse_args(argv):
    parser = argparse.ArgumentParser(
        prog='sam2_replay',
        description='Play a rosbag2 into a running sam2_tracker (at a rate, or in lockstep '
        'with its answers), apply a prompt script through its services, and record its '
        'outputs.',
    )
    parser.add_argument('bag', type=Path, help='the rosbag2 directory to play')
    parser.add_argument(
        '--lockstep',
        action='store_true',
        help='publish each image after the answer to the previous one',
    )
    parser.add_argument(
        '--rate', type=positive_float, default=None, help='rate factor (1; not with --lockstep)'
    )
    parser.add_argument('--prompts', type=Path, help='prompt script (YAML)')
    parser.add_argument('--record', type=Path, help='record the outputs to this new bag')
    parser.add_argument(
        '--record-topic',
        type=ros_name,
        action='append',
        default=[],
        help='another topic to record (repeatable), e.g. label_image',
    )
    parser.add_argument('--storage', choices=('mcap', 'sqlite3'), default='mcap')
    parser.add_argument(
        '--node', type=ros_name, default='/sam2_tracker', help='the tracker node name'
    )
    parser.add_argument(
        '--tracked-objects',
        type=ros_name,
        default='/tracked_objects',
        help="the tracker's tracked_objects topic",
    )
    parser.add_argument(
        '--topics', type=ros_name, nargs='+', help='topics to play (default: camera topics)'
    )
    parser.add_argument('--remap', action='append', default=[], help='FROM:=TO (repeatable)')
    parser.add_argument('--no-clock', action='store_true', help='do not publish /clock')
    parser.add_argument(
        '--no-reset',
        action='store_true',
        help="keep the node's objects instead of resetting before a script",
    )
    parser.add_argument(
        '--qos-profile-overrides-path',
        type=Path,
        help='YAML {topic: {reliability, durability, history, depth}}',
    )
    parser.add_argument(
        '--frame-timeout',
        type=positive_float,
        default=60.0,
        help='seconds to wait for an answer per frame (60)',
    )
    parser.add_argument(
        '--connect-timeout',
        type=positive_float,
        default=60.0,
        help='seconds to wait for the tracker to appear (60)',
    )
    parser.add_argument('--max-frames', type=int, default=0, help='stop after N images')
    args = parser.parse_args(argv)
    if args.max_frames < 0:
        parser.error(f'argument --max-frames: {args.max_frames} must be >= 0')
    if args.lockstep and args.rate is not None:
        parser.error('--rate does not apply with --lockstep (each image waits for an answer)')
    if args.rate is None:
        args.rate = 1.0
    return args


def print_result(result: ReplayResult, prefix: str = 'sam2_replay') -> None:
    """Print prompts and a one-line summary of a replay."""
    for log in result.prompts:
        status = 'ok' if log.success else 'REJECTED'
        ident = f' -> object {log.object_id}' if log.object_id else ''
        print(f'{prefix}: {log.event.describe()}: {status}{ident}: {log.message}')
    latencies = sorted(result.latency_ms.values())
    median = latencies[len(latencies) // 2] if latencies else float('nan')
    print(
        f'{prefix}: {len(result.stamps_ns)} frames published, {len(result.answers)} answered, '
        f'{len(result.unanswered)} unanswered, {result.wall_s:.1f} s, median latency '
        f'{median:.0f} ms' + (' (INTERRUPTED)' if result.interrupted else '')
    )
    if result.recorded:
        counts = ', '.join(f'{t}: {n}' for t, n in sorted(result.recorded.items()))
        print(f'{prefix}: recorded {counts}')


def main(argv=None) -> int:
    """Replay; exit 0 when every frame was answered and every scripted prompt succeeded."""
    from sam2_ros.ros.ros_env import default_to_loopback

    args = _parse_args(argv)
    default_to_loopback()
    try:
        options = ReplayOptions(
            bag=args.bag,
            lockstep=args.lockstep,
            rate=args.rate,
            node=args.node,
            tracked_objects=args.tracked_objects,
            topics=args.topics,
            remap=_parse_remaps(args.remap),
            clock=not args.no_clock,
            script=load_prompt_script(args.prompts) if args.prompts else None,
            reset_first=not args.no_reset,
            record=args.record,
            record_topics=args.record_topic,
            storage=args.storage,
            qos_overrides=(
                load_qos_overrides(args.qos_profile_overrides_path)
                if args.qos_profile_overrides_path
                else {}
            ),
            frame_timeout=args.frame_timeout,
            connect_timeout=args.connect_timeout,
            max_frames=args.max_frames,
        )
        result = Replayer(options).run()
    except (BagError, PromptScriptError, ReplayError) as error:
        print(f'sam2_replay: error: {error}', file=sys.stderr)
        return 1
    print_result(result)
    if result.assignment:
        print(f'sam2_replay: ground truth -> objects: {json.dumps(result.assignment)}')
    ok = not result.unanswered and all(log.success for log in result.prompts)
    return 0 if ok and not result.interrupted else 1


if __name__ == '__main__':
    sys.exit(main())
