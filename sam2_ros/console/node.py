"""The sam2_web_console node: click-to-segment on the live stream in a browser.

A separate node that talks to a running `sam2_tracker` only through its ROS interface: it
subscribes to the tracker's input image and its `tracked_objects`, serves a page over HTTP and
one WebSocket per browser (FastAPI on uvicorn), and turns the page's clicks, drags and buttons
into `add_prompt`, `remove_object` and `reset_tracking` calls.

What the browser gets: the raw image of every frame the tracker published `tracked_objects`
for (paired by header stamp, JPEG-encoded here, at most `max_fps`), with that message's objects
and their RLE masks; the page draws the masks itself. Not the tracker's `overlay` topic,
because (1) the masks then sit exactly on the frame they were computed for and the stamp the
page sends back with a prompt is that frame's, which the tracker still buffers; (2) the page
can highlight the selected object, draw multimask candidates and export the exact masks;
(3) the tracker renders its overlay on its tracking thread only while someone subscribes,
and the console should cost the tracker nothing. It also follows the tracker's /diagnostics,
so the page says what the tracker is doing and, in red, when it runs untrained weights.

Threading: the ROS executor (the caller's, `main` spins one) runs the subscriptions and the
service responses; uvicorn runs its asyncio loop in a thread of its own. Frames cross to the
loop with `call_soon_threadsafe`; service calls use `call_async`, whose rclpy future settles
an asyncio future, so neither side ever waits on the other. Each browser gets only the newest
frame (a slow one skips frames, nothing queues), and a browser that disconnects only ends its
own tasks.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from contextlib import asynccontextmanager
from dataclasses import dataclass
import json
import math
import socket
import sys
import threading
import time

from builtin_interfaces.msg import Time
import cv2
from diagnostic_msgs.msg import DiagnosticArray
import rclpy
from rclpy.clock import Clock, ClockType
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from sensor_msgs.msg import CompressedImage, Image

from sam2_ros.console.parameters import PARAMETERS
from sam2_ros.console.protocol import (
    MAX_MESSAGE_BYTES,
    MAX_POINTS,
    PROTOCOL_VERSION,
    UNKNOWN_TRACKER,
    ChooseCandidateCommand,
    Command,
    ConsoleError,
    FrameView,
    ObjectView,
    PromptCommand,
    ProtocolError,
    RemoveCommand,
    ResetCommand,
    Stamp,
    TrackerStatus,
    check_bind_settings,
    coco_document,
    host_header_allowed,
    is_loopback,
    label_png,
    origin_allowed,
    pack_frame,
    parse_command,
    reply,
    to_image_pixels,
    token_matches,
    tracker_status,
)
from sam2_ros.console.server import Browser, create_app
from sam2_ros.core.stamps import stamp_ns
from sam2_ros.msg import Mask, PromptPoint, TrackedObjectArray
from sam2_ros.ros.callback_guard import CallbackGuard
from sam2_ros.ros.conversions import msg_to_frame_result
from sam2_ros.ros.image_conversion import (
    ImageConversionError,
    compressed_msg_to_rgb,
    image_msg_to_rgb,
    image_qos,
)
from sam2_ros.ros.names import status_name
from sam2_ros.ros.parameters import declare
from sam2_ros.ros.shutdown import init_rclpy, shutdown_rclpy, spin_until_stopped
from sam2_ros.srv import AddPrompt, RemoveObject, ResetTracking

NODE_NAME = 'sam2_web_console'
# The tracker publishes diagnostics every diagnostics_period_sec (1 s by default); this long
# without them, the page marks its status STALE.
STALE_AFTER_SEC = 5.0


@dataclass(frozen=True)
class SentFrame:
    """A frame as streamed to browsers: what it showed and its JPEG."""

    view: FrameView
    jpeg: bytes


class FrameHistory:
    """The last frames sent to browsers, by stamp (read by the web thread)."""

    def __init__(self, size: int) -> None:
        """Keep at most `size` frames."""
        self._size = size
        self._frames: OrderedDict[int, SentFrame] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, frame: SentFrame) -> None:
        """Store a frame, forgetting the oldest beyond the size."""
        with self._lock:
            self._frames[frame.view.stamp.ns] = frame
            while len(self._frames) > self._size:
                self._frames.popitem(last=False)

    def get(self, stamp: Stamp | None) -> SentFrame | None:
        """Return the frame with this stamp (the newest for None), or None."""
        with self._lock:
            if stamp is None:
                return next(reversed(self._frames.values()), None)
            return self._frames.get(stamp.ns)

    def describe(self) -> str:
        """Say which stamps are held, for error replies."""
        with self._lock:
            if not self._frames:
                return 'no frame has been streamed yet'
            stamps = [frame.view.stamp for frame in self._frames.values()]
        return f'the console holds the last {len(stamps)} frames, {stamps[0]} to {stamps[-1]}'


@dataclass(frozen=True)
class CandidateSet:
    """SAM 2's multimask candidates from a browser's last single-point prompt."""

    object_id: int
    stamp: Stamp
    masks: tuple  # sam2_ros/Mask messages


def frame_view(msg) -> FrameView:
    """Convert a sam2_ros/TrackedObjectArray into what the browser and the export use."""
    result = msg_to_frame_result(msg)
    objects = tuple(
        ObjectView(
            obj_id=obj.obj_id,
            label=obj.label,
            class_name=obj.class_name,
            state=obj.state.name,
            score=obj.score,
            visibility=obj.visibility,
            box=(0, 0, 0, 0) if obj.box is None else _xywh(obj.box),
            area=obj.area,
            mask=obj.mask,
        )
        for obj in result.objects
    )
    return FrameView(
        stamp=Stamp(int(msg.header.stamp.sec), int(msg.header.stamp.nanosec)),
        frame_id=msg.header.frame_id,
        width=int(msg.image_width),
        height=int(msg.image_height),
        is_keyframe=result.is_keyframe,
        objects=objects,
    )


def _xywh(box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = box
    return (x0, y0, x1 - x0, y1 - y0)


def _score(value: float) -> float | None:
    return round(float(value), 4) if math.isfinite(value) else None  # JSON has no NaN


class WebConsoleNode(Node):
    """Serves the browser console and relays its prompts to a sam2_tracker node."""

    def __init__(self, **kwargs) -> None:
        """Declare and check the parameters, subscribe, create the service clients.

        Raises ValueError when the host/token settings would expose the console.
        """
        super().__init__(NODE_NAME, **kwargs)
        declare(self, PARAMETERS)
        self._params = {p.name: self.get_parameter(p.name).value for p in PARAMETERS}
        params = self._params
        check_bind_settings(params['host'], params['token'])
        for spec in PARAMETERS:
            problem = spec.check(params[spec.name])
            if problem:
                raise ValueError(problem)
        self._loopback_only = is_loopback(params['host'])
        self._history = FrameHistory(params['history_frames'])
        self._images: OrderedDict[int, object] = OrderedDict()  # stamp -> image message
        self._period = 1.0 / params['max_fps']
        self._last_sent = 0.0
        self._unpaired = 0  # tracked_objects in a row without their image
        self._browsers: set[Browser] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server = None
        self._server_thread: threading.Thread | None = None
        self.url = ''

        # An exception in a ROS callback is logged and counted, never the end of the console.
        self._guard = guard = CallbackGuard(self.get_logger())
        qos = image_qos(params['image_qos_reliability'], depth=5)
        self._image_topic = self.resolve_topic_name('image')
        if params['image_transport'] == 'compressed':
            self._image_topic += '/compressed'
            self.create_subscription(
                CompressedImage, self._image_topic, guard(self._on_image), qos
            )
        else:
            self.create_subscription(Image, 'image', guard(self._on_image), qos)
        self.create_subscription(
            TrackedObjectArray, 'tracked_objects', guard(self._on_tracked), 10
        )
        tracker = params['tracker'].rstrip('/')
        self._tracker_services = {
            'add': self.create_client(AddPrompt, f'{tracker}/add_prompt'),
            'remove': self.create_client(RemoveObject, f'{tracker}/remove_object'),
            'reset': self.create_client(ResetTracking, f'{tracker}/reset_tracking'),
        }
        self._tracker = self.resolve_service_name(tracker)

        self._status_name = status_name(self._tracker)
        self._tracker_status: TrackerStatus = UNKNOWN_TRACKER
        self._status_time: float | None = None
        self.create_subscription(DiagnosticArray, '/diagnostics', guard(self._on_diagnostics), 10)
        # Wall time, not ROS time: with use_sim_time a paused /clock would hide a dead tracker.
        steady = Clock(clock_type=ClockType.STEADY_TIME)
        self.create_timer(1.0, guard(self._check_status_age), clock=steady)

    # ------------------------------------------------------------------ ROS side

    def _on_image(self, msg) -> None:
        self._images[stamp_ns(msg.header.stamp)] = msg
        while len(self._images) > self._params['image_buffer_frames']:
            self._images.popitem(last=False)

    def _on_tracked(self, msg) -> None:
        """Pair the tracked frame with its image and stream it, at most max_fps.

        Frames are paired and kept for GET /export whether or not a browser is connected.
        """
        if self._loop is None:
            return
        key = stamp_ns(msg.header.stamp)
        image = self._images.get(key)
        while self._images and next(iter(self._images)) <= key:  # older frames are done
            self._images.popitem(last=False)
        if image is None:
            self._unpaired += 1
            if self._unpaired >= 10:
                self.get_logger().warning(
                    f'{self._unpaired} tracked_objects messages in a row without an image of '
                    f"the same stamp on {self._image_topic}: is it the tracker's input topic, "
                    'with the same image_transport? With best_effort images are lost in '
                    "transport: set image_qos_reliability as the tracker's. Or raise "
                    'image_buffer_frames.',
                    throttle_duration_sec=10.0,
                )
            return
        self._unpaired = 0
        now = time.monotonic()
        if now - self._last_sent < self._period:
            return
        try:
            jpeg = self._jpeg(image)
        except ImageConversionError as error:
            self.get_logger().warning(f'cannot stream an image: {error}', throttle_duration_sec=5)
            return
        self._last_sent = now
        frame = SentFrame(frame_view(msg), jpeg)
        self._history.add(frame)
        if not self._browsers:
            return
        try:
            self._loop.call_soon_threadsafe(self._offer, pack_frame(frame.view, jpeg))
        except RuntimeError:  # the server's loop has closed: shutting down
            pass

    def _jpeg(self, msg) -> bytes:
        quality = [cv2.IMWRITE_JPEG_QUALITY, self._params['jpeg_quality']]
        if isinstance(msg, CompressedImage):
            if any(name in msg.format.lower() for name in ('jpeg', 'jpg')):
                return bytes(msg.data)
            rgb = compressed_msg_to_rgb(msg)
        else:
            rgb = image_msg_to_rgb(msg)
        ok, encoded = cv2.imencode('.jpg', cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), quality)
        if not ok:
            raise ImageConversionError('JPEG encoding failed')
        return encoded.tobytes()

    def _offer(self, data: bytes) -> None:
        for browser in self._browsers:
            browser.offer(data)

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name != self._status_name:
                continue
            level = status.level
            level = int.from_bytes(level, 'big') if isinstance(level, bytes) else int(level)
            values = {pair.key: pair.value for pair in status.values}
            self._status_time = time.monotonic()
            self._set_tracker_status(tracker_status(level, status.message, values))

    def _check_status_age(self) -> None:
        if self._status_time is None or self._tracker_status.level == 'STALE':
            return
        age = time.monotonic() - self._status_time
        if age > STALE_AFTER_SEC:
            self._set_tracker_status(self._tracker_status.stale(age))

    def _set_tracker_status(self, status: TrackerStatus) -> None:
        """Keep the tracker's status; tell the browsers when it changed."""
        previous, self._tracker_status = self._tracker_status, status
        if status == previous:
            return
        if status.untrained and not previous.untrained:
            self.get_logger().warning(
                f'{self._tracker} runs UNTRAINED weights: the masks the page shows and the '
                'exports are meaningless'
            )
        loop = self._loop
        if loop is not None:
            try:
                loop.call_soon_threadsafe(self._post, self.tracker_message())
            except RuntimeError:  # the server's loop has closed: shutting down
                pass

    def _post(self, text: str) -> None:
        for browser in self._browsers:
            browser.post(text)

    async def _call(self, name: str, request, what: str):
        """Call a tracker service without blocking either thread; return the response."""
        client = self._tracker_services[name]
        service = self.resolve_service_name(client.srv_name)
        if not client.service_is_ready():
            raise ConsoleError(
                f'cannot {what}: {service} is not available (is sam2_tracker running '
                f"and is the console's tracker parameter its name?)",
                'unavailable',
            )
        loop = asyncio.get_running_loop()
        answer = loop.create_future()

        def settle(done) -> None:
            if answer.done():
                return
            if done.cancelled():
                answer.cancel()
            elif done.exception() is not None:
                answer.set_exception(done.exception())
            else:
                answer.set_result(done.result())

        def relay(done) -> None:  # runs in the ROS executor's thread
            try:
                loop.call_soon_threadsafe(settle, done)
            except RuntimeError:  # the loop has closed
                pass

        ros_future = client.call_async(request)
        ros_future.add_done_callback(relay)
        timeout = self._params['service_timeout_sec']
        try:
            return await asyncio.wait_for(answer, timeout)
        except asyncio.TimeoutError:
            client.remove_pending_request(ros_future)
            raise ConsoleError(
                f'cannot {what}: {service} did not answer within {timeout:g} s',
                'unavailable',
            ) from None

    # ------------------------------------------------------------------ commands

    async def answer(self, browser: Browser, data: str | bytes) -> str:
        """Answer one browser message with a JSON reply; never raise."""
        try:
            command = parse_command(data)
        except ProtocolError as error:
            return reply(error.request_id, False, str(error), error='bad_request')
        try:
            return await self._dispatch(browser, command)
        except ProtocolError as error:
            return reply(command.request_id, False, str(error), error='bad_request')
        except ConsoleError as error:
            return reply(command.request_id, False, str(error), error=error.code)
        except Exception as error:  # noqa: BLE001 - the page gets the reason, serving goes on
            self.get_logger().error(f'{type(command).__name__} failed: {error!r}')
            return reply(command.request_id, False, f'internal error: {error!r}', error='internal')

    async def _dispatch(self, browser: Browser, command: Command) -> str:
        if isinstance(command, PromptCommand):
            return await self._prompt(browser, command)
        if isinstance(command, ChooseCandidateCommand):
            return await self._choose(browser, command)
        if isinstance(command, RemoveCommand):
            return await self._remove(browser, command)
        return await self._reset(browser, command)

    async def _prompt(self, browser: Browser, command: PromptCommand) -> str:
        frame = self._history.get(command.stamp)
        if frame is None:
            raise ConsoleError(
                f'frame {command.stamp} is not one the console streamed recently; '
                f'{self._history.describe()}',
                'not_found',
            )
        prompt = to_image_pixels(command, (frame.view.width, frame.view.height))
        request = AddPrompt.Request(object_id=command.object_id, label=command.label)
        request.points = [
            PromptPoint(x=float(x), y=float(y), label=int(label))
            for (x, y), label in zip(prompt.points, prompt.labels, strict=True)
        ]
        request.box = [] if prompt.box is None else [float(v) for v in prompt.box]
        request.frame_stamp = Time(sec=command.stamp.sec, nanosec=command.stamp.nanosec)
        response = await self._call('add', request, 'prompt')
        summary = f'{prompt.describe()} on frame {command.stamp}'
        if not response.success:
            raise ConsoleError(f'{response.message} ({summary})', 'rejected')
        browser.candidates = None
        if response.candidates:
            browser.candidates = CandidateSet(
                response.object_id, command.stamp, tuple(response.candidates)
            )
        self.get_logger().info(f'browser prompt: {response.message} ({summary})')
        return reply(
            command.request_id,
            True,
            f'{response.message} ({summary})',
            object_id=response.object_id,
            score=_score(response.score),
            stamp={'sec': command.stamp.sec, 'nanosec': command.stamp.nanosec},
            candidates=[
                {'score': _score(score), 'mask': _mask_json(mask)}
                for mask, score in zip(response.candidates, response.candidate_scores, strict=True)
            ],
        )

    async def _choose(self, browser: Browser, command: ChooseCandidateCommand) -> str:
        candidates = browser.candidates
        if candidates is None:
            raise ConsoleError(
                'no multimask candidates to choose from: prompt an object with one click first',
                'not_found',
            )
        if command.index >= len(candidates.masks):
            raise ProtocolError(
                f'index {command.index}: there are {len(candidates.masks)} candidates',
                command.request_id,
            )
        stamp = candidates.stamp
        request = AddPrompt.Request(object_id=candidates.object_id)
        request.mask = candidates.masks[command.index]
        request.frame_stamp = Time(sec=stamp.sec, nanosec=stamp.nanosec)
        response = await self._call('add', request, 'choose a candidate')
        what = f'candidate {command.index + 1} on frame {stamp}'
        if not response.success:
            raise ConsoleError(f'{response.message} ({what})', 'rejected')
        return reply(
            command.request_id,
            True,
            f'{response.message} ({what})',
            object_id=response.object_id,
            score=_score(response.score),
        )

    async def _remove(self, browser: Browser, command: RemoveCommand) -> str:
        request = RemoveObject.Request(object_id=command.object_id)
        response = await self._call('remove', request, f'remove object {command.object_id}')
        if not response.success:
            raise ConsoleError(response.message, 'rejected')
        if browser.candidates and browser.candidates.object_id == command.object_id:
            browser.candidates = None
        return reply(command.request_id, True, response.message, object_id=command.object_id)

    async def _reset(self, browser: Browser, command: ResetCommand) -> str:
        response = await self._call('reset', ResetTracking.Request(), 'reset')
        if not response.success:
            raise ConsoleError(response.message, 'rejected')
        browser.candidates = None
        return reply(command.request_id, True, response.message, removed=response.removed_count)

    def tracker_message(self) -> str:
        """Return the `tracker` message: the tracker's state as its diagnostics last said."""
        return json.dumps(self._tracker_status.to_json())

    def hello(self) -> str:
        """Return the first message a browser gets: what it is connected to and the limits."""
        return json.dumps(
            {
                'type': 'hello',
                'protocol': PROTOCOL_VERSION,
                'tracker': self._tracker,
                'image_topic': self._image_topic,
                'tracked_objects_topic': self.resolve_topic_name('tracked_objects'),
                'max_message_bytes': MAX_MESSAGE_BYTES,
                'max_points': MAX_POINTS,
                'max_fps': self._params['max_fps'],
            }
        )

    # ------------------------------------------------------------------ web side

    def admit_host(self, host: str | None) -> bool:
        """Check an HTTP Host header: on loopback only loopback names (no DNS rebinding)."""
        return host_header_allowed(host, self._loopback_only)

    def token_ok(self, token: str | None) -> bool:
        """Check the token a request presents (any, when none is set)."""
        return token_matches(self._params['token'], token)

    def admit(self, host: str | None, origin: str | None, token: str | None) -> str | None:
        """Return why a WebSocket is refused, or None to accept it."""
        if not self.admit_host(host):
            return f'host {host!r} is not a loopback name'
        if not origin_allowed(origin, host):
            return f'origin {origin!r} is not this console'
        if not self.token_ok(token):
            return 'missing or wrong token: open the page as http://HOST:PORT/#token=...'
        return None

    @property
    def browser_count(self) -> int:
        """Return how many browsers are connected."""
        return len(self._browsers)

    def export(self, stamp: Stamp | None, kind: str) -> tuple[bytes, str, str]:
        """Return (content, media type, file name) of a held frame's export."""
        frame = self._history.get(stamp)
        if frame is None:
            raise ConsoleError(
                f'frame {stamp} is not held: {self._history.describe()}', 'not_found'
            )
        view = frame.view
        base = f'frame_{view.stamp.sec}_{view.stamp.nanosec:09d}'
        if kind == 'json':
            document = coco_document(view, f'{base}.jpg', self._tracker_status)
            return json.dumps(document).encode(), 'application/json', f'{base}.json'
        if kind == 'png':
            return label_png(view, self._tracker_status), 'image/png', f'{base}_masks.png'
        return frame.jpeg, 'image/jpeg', f'{base}.jpg'

    def add_browser(self, browser: Browser) -> None:
        """Start streaming to a browser (loop thread)."""
        self._browsers.add(browser)

    def remove_browser(self, browser: Browser) -> None:
        """Stop streaming to a browser (loop thread)."""
        self._browsers.discard(browser)

    def start_server(self, timeout: float = 10.0) -> str:
        """Bind the socket and start uvicorn in a thread; return the page's URL.

        Raises OSError naming the address when it cannot listen (port in use, bad host).
        """
        import uvicorn

        host, port = self._params['host'], self._params['port']
        try:
            family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
            sock = socket.create_server((host, port), family=family)
        except OSError as error:
            raise OSError(f'cannot listen on {host}:{port}: {error}') from error

        @asynccontextmanager
        async def lifespan(app):
            self._loop = asyncio.get_running_loop()
            yield
            self._loop = None

        config = uvicorn.Config(
            create_app(self, lifespan),
            log_level='warning',
            access_log=False,
            lifespan='on',
            ws_max_size=4 * MAX_MESSAGE_BYTES,  # beyond this the socket closes with 1009
            ws_per_message_deflate=False,  # frames are JPEG: compressing them wastes CPU
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._server_thread = threading.Thread(
            target=self._server.run, kwargs={'sockets': [sock]}, name='web_console', daemon=True
        )
        self._server_thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._server_thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f'the web server did not start on {host}:{port}')
            time.sleep(0.02)
        bound_port = sock.getsockname()[1]
        shown = f'[{host}]' if ':' in host else host
        self.url = f'http://{shown}:{bound_port}/'
        hint = ' (open it with #token=<token> appended)' if self._params['token'] else ''
        self.get_logger().info(
            f'browser console at {self.url}{hint}: tracker {self._tracker}, images from '
            f'{self._image_topic}, objects from {self.resolve_topic_name("tracked_objects")}'
        )
        return self.url

    def stop_server(self) -> None:
        """Close the browsers' connections and stop the web server."""
        if self._server is None:
            return
        self._server.should_exit = True
        self._server_thread.join(timeout=5.0)
        self._server = self._server_thread = None


def _mask_json(mask: Mask) -> dict:
    return {'size': [int(mask.height), int(mask.width)], 'counts': list(mask.counts)}


def main(args=None) -> int:
    """Run the console until SIGINT, SIGTERM or an external shutdown; return the exit code."""
    stop = init_rclpy(args)
    node = None
    executor = SingleThreadedExecutor()
    logger = rclpy.logging.get_logger(NODE_NAME)
    try:
        node = WebConsoleNode()
        node.start_server()
        executor.add_node(node)
        spin_until_stopped(executor, stop)
    except (KeyboardInterrupt, ExternalShutdownException):  # interrupted while starting
        pass
    except ParameterException as error:
        logger.fatal(f'invalid parameters: {error}')
        return 2
    except (ValueError, OSError, RuntimeError) as error:
        logger.fatal(str(error))
        return 2
    finally:
        if node is not None:
            node.stop_server()
            node.destroy_node()
        executor.shutdown(timeout_sec=1.0)
        shutdown_rclpy(stop)
    return 0


if __name__ == '__main__':
    sys.exit(main())
