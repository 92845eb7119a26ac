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
import json
import math
import sys
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

from sam2_ros.console.access import (
    check_bind_settings,
    host_header_allowed,
    is_loopback,
    origin_allowed,
    token_matches,
)
from sam2_ros.console.export import coco_document, label_png
from sam2_ros.console.frames import CandidateSet, FrameHistory, ImagePairing, SentFrame, frame_view
from sam2_ros.console.parameters import PARAMETERS
from sam2_ros.console.protocol import (
    MAX_MESSAGE_BYTES,
    MAX_POINTS,
    PROTOCOL_VERSION,
    UNKNOWN_TRACKER,
    ChooseCandidateCommand,
    Command,
    ConsoleError,
    PromptCommand,
    ProtocolError,
    RemoveCommand,
    ResetCommand,
    Stamp,
    TrackerStatus,
    pack_frame,
    parse_command,
    reply,
    to_image_pixels,
    tracker_status,
)
from sam2_ros.console.relay import call_service
from sam2_ros.console.server import Browser, WebServer
from sam2_ros.core.stamps import stamp_ns
from sam2_ros.msg import Mask, PromptPoint, TrackedObjectArray
from sam2_ros.ros.callback_guard import CallbackGuard
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
        self._pairing = ImagePairing(params['image_buffer_frames'])
        self._period = 1.0 / params['max_fps']
        self._last_sent = 0.0
        self._browsers: set[Browser] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: WebServer | None = None
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
        self._pairing.add(stamp_ns(msg.header.stamp), msg)

    def _on_tracked(self, msg) -> None:
        """Pair the tracked frame with its image and stream it, at most max_fps.

        Frames are paired and kept for GET /export whether or not a browser is connected.
        """
        if self._loop is None:
            return
        image = self._pairing.take(stamp_ns(msg.header.stamp))
        if image is None:
            if self._pairing.unpaired >= 10:
                self.get_logger().warning(
                    f'{self._pairing.unpaired} tracked_objects messages in a row without an '
                    f"image of the same stamp on {self._image_topic}: is it the tracker's input, "
                    'with the same image_transport? With best_effort images are lost in '
                    "transport: set image_qos_reliability as the tracker's. Or raise "
                    'image_buffer_frames.',
                    throttle_duration_sec=10.0,
                )
            return
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
        return await call_service(
            self._tracker_services[name],
            self.resolve_service_name(self._tracker_services[name].srv_name),
            request,
            what,
            self._params['service_timeout_sec'],
        )

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
        """Start the web server; return the page's URL.

        Raises OSError naming the address when it cannot listen (port in use, bad host).
        """
        host, port = self._params['host'], self._params['port']
        self._server = WebServer(self, host, port, self._set_loop)
        bound_port = self._server.start(timeout)
        shown = f'[{host}]' if ':' in host else host
        self.url = f'http://{shown}:{bound_port}/'
        hint = ' (open it with #token=<token> appended)' if self._params['token'] else ''
        self.get_logger().info(
            f'browser console at {self.url}{hint}: tracker {self._tracker}, images from '
            f'{self._image_topic}, objects from {self.resolve_topic_name("tracked_objects")}'
        )
        return self.url

    def _set_loop(self, loop: asyncio.AbstractEventLoop | None) -> None:
        self._loop = loop  # the server's loop while it runs, where frames are offered

    def stop_server(self) -> None:
        """Close the browsers' connections and stop the web server."""
        if self._server is not None:
            self._server.stop()
            self._server = None


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
