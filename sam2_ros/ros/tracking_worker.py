"""The node's threading model, free of ROS: a frame buffer and one tracking worker.

- Image callbacks `FrameBuffer.put` a decoded frame and return: it becomes the newest frame
  (replacing, and counting as dropped, one the worker had not taken yet) and enters a short
  ring of recent frames used by stamped prompts. Nothing queues without bound.
- One `TrackingWorker` thread owns the pipeline. It runs queued jobs (prompts, removals,
  resets, configuration changes) first, then the newest frame. Services submit jobs and wait
  on their futures with a timeout, so they never touch the pipeline concurrently.
- A prompt may name the stamp of the frame the user clicked on. If the worker already went
  past it, the prompt is carried through the buffered frames to the newest processed frame
  (`carry_prompt`); if that frame has not been processed yet, the worker processes it first.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
import logging
import threading
import time

import numpy as np

from sam2_ros.core.pipeline import FrameResult, TrackedObject, TrackingPipeline
from sam2_ros.core.prompt_transport import CarriedPrompt, carry_prompt
from sam2_ros.core.prompts import FrameError, PromptError, make_prompt, scale_from_canvas
from sam2_ros.core.streaming_tracker import ObjectResult
from sam2_ros.ros.stamps import stamp_text

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Frame:
    """A decoded input frame and where it came from."""

    rgb: np.ndarray  # (H, W, 3) uint8
    header: object  # the source image's std_msgs/Header, copied to every output
    stamp_ns: int  # header stamp in nanoseconds: how prompts name this frame
    sequence: int  # arrival order, from 1
    received: float  # time.perf_counter() at arrival


class FrameBuffer:
    """The newest frame for the worker, and a ring of recent frames for stamped prompts."""

    def __init__(self, history: int) -> None:
        """Keep the last `history` frames (at least 1) for stamped prompts."""
        self._condition = threading.Condition()
        self._history: collections.deque[Frame] = collections.deque(maxlen=max(1, history))
        self._newest: Frame | None = None
        self._sequence = 0
        self.dropped = 0  # frames replaced before the worker took them

    def put(self, rgb: np.ndarray, header, stamp_ns: int) -> Frame:
        """Store a frame as the newest one; return it."""
        with self._condition:
            self._sequence += 1
            frame = Frame(rgb, header, stamp_ns, self._sequence, time.perf_counter())
            if self._newest is not None:
                self.dropped += 1
            self._newest = frame
            self._history.append(frame)
            self._condition.notify_all()
        return frame

    def take(self, timeout: float) -> Frame | None:
        """Return the newest untaken frame, waiting up to `timeout` seconds; None if none."""
        with self._condition:
            if self._newest is None:
                self._condition.wait(timeout)
            frame, self._newest = self._newest, None
            return frame

    def wake(self) -> None:
        """Make a waiting `take` return now (a job is waiting)."""
        with self._condition:
            self._condition.notify_all()

    def discard_until(self, sequence: int) -> None:
        """Forget the untaken newest frame if it is not newer than `sequence`."""
        with self._condition:
            if self._newest is not None and self._newest.sequence <= sequence:
                self._newest = None

    def find(self, stamp_ns: int) -> Frame | None:
        """Return the most recent buffered frame with this stamp, or None."""
        with self._condition:
            for frame in reversed(self._history):
                if frame.stamp_ns == stamp_ns:
                    return frame
        return None

    def span(self, first: int, last: int) -> list[Frame]:
        """Return the buffered frames with sequence numbers in [first, last], in order."""
        with self._condition:
            return [f for f in self._history if first <= f.sequence <= last]

    def describe(self) -> str:
        """Say which stamps the ring holds, for error messages."""
        with self._condition:
            if not self._history:
                return 'no frame has been received yet'
            oldest, newest = self._history[0], self._history[-1]
            return (
                f'the last {len(self._history)} frames span stamps '
                f'{stamp_text(oldest.stamp_ns)} to {stamp_text(newest.stamp_ns)}'
            )

    def clear(self) -> None:
        """Drop every frame (deactivation)."""
        with self._condition:
            self._history.clear()
            self._newest = None
            self._condition.notify_all()


@dataclass(frozen=True)
class PromptRequest:
    """A prompt as the services and click topics hand it to the worker (image pixels)."""

    obj_id: int  # 0 = a new object
    points: np.ndarray | None = None  # (N, 2) x, y
    labels: np.ndarray | None = None  # (N,) 1 foreground, 0 background
    box: np.ndarray | None = None  # [x0, y0, x1, y1]
    mask: np.ndarray | None = None  # (H, W) bool
    label: str = ''
    stamp_ns: int = 0  # 0 = the newest processed frame
    canvas: tuple[int, int] | None = None  # (w, h) of the view points and box come from


@dataclass(frozen=True)
class PromptOutcome:
    """What a prompt did."""

    obj: TrackedObject  # the object on the frame the prompt was applied to
    sam: ObjectResult  # SAM 2's output, with multimask candidates
    carried: CarriedPrompt | None  # how the prompt moved from the named frame, if it did


class TrackingWorker:
    """Runs the pipeline on the newest frame; runs jobs between frames."""

    def __init__(
        self,
        pipeline: TrackingPipeline,
        frames: FrameBuffer,
        on_result: Callable[[Frame, FrameResult], None],
        idle_wait: float = 0.05,
    ) -> None:
        """Track `frames` with `pipeline`; `on_result` publishes (called on the worker)."""
        self.pipeline = pipeline
        self.frames = frames
        self._on_result = on_result
        self._idle_wait = idle_wait
        self._jobs: collections.deque[tuple[Future, Callable]] = collections.deque()
        self._jobs_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.latest: Frame | None = None  # the newest processed frame
        self.failures = 0  # frames the pipeline raised on

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start the worker thread."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name='sam2_tracking', daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop after the current frame or job; cancel queued jobs. False if it did not end."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            alive = self._thread.is_alive()
        else:
            alive = False
        with self._jobs_lock:
            jobs, self._jobs = list(self._jobs), collections.deque()
        for future, _ in jobs:
            future.cancel()
        return not alive

    @property
    def running(self) -> bool:
        """Whether the worker thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    # ------------------------------------------------------------------ jobs

    def submit(self, job: Callable) -> Future:
        """Run `job()` on the worker thread before the next frame; returns its future."""
        future: Future = Future()
        if self._stop.is_set() or not self.running:
            future.set_exception(RuntimeError('the tracking worker is not running'))
            return future
        with self._jobs_lock:
            self._jobs.append((future, job))
        self.frames.wake()
        return future

    def prompt(self, request: PromptRequest) -> PromptOutcome:
        """Apply a prompt (call on the worker thread, through `submit`)."""
        target = self._prompt_frame(request.stamp_ns)
        latest = self.latest
        carried = None
        points, labels, box, mask = request.points, request.labels, request.box, request.mask
        height, width = target.rgb.shape[:2]
        if request.canvas is not None:  # coordinates of a scaled view of the target frame
            if points is not None:
                points = scale_from_canvas(points, request.canvas, (width, height))
            if box is not None:
                box = scale_from_canvas(box.reshape(2, 2), request.canvas, (width, height))
                box = box.ravel()
        if target.sequence < latest.sequence:
            prompt = make_prompt(width, height, points, labels, box, mask)
            frames = self.frames.span(target.sequence, latest.sequence)
            if not frames or frames[0].sequence != target.sequence or frames[-1] is not latest:
                raise PromptError(
                    f'frame {stamp_text(request.stamp_ns)} is no longer buffered; '
                    + self.frames.describe()
                )
            carried = carry_prompt(prompt, [f.rgb for f in frames], self.pipeline.flow)
            moved = carried.prompt
            points, labels, box, mask = moved.points, moved.labels, moved.box, moved.mask
            if not len(points):
                points = labels = None
        if request.obj_id == 0:
            obj, sam = self.pipeline.add_object(points, labels, box, mask, label=request.label)
        else:
            obj, sam = self.pipeline.refine(
                request.obj_id, points, labels, box, mask, label=request.label
            )
        return PromptOutcome(obj, sam, carried)

    def _prompt_frame(self, stamp_ns: int) -> Frame:
        """Return the frame a prompt names, processing it first if the worker has not yet."""
        if stamp_ns == 0:
            if self.latest is not None:
                return self.latest
            frame = self.frames.take(0.0)
            if frame is None:
                raise FrameError('no image has been received yet: nothing to prompt on')
        else:
            frame = self.frames.find(stamp_ns)
            if frame is None:
                raise PromptError(
                    f'no buffered frame has stamp {stamp_text(stamp_ns)}; '
                    f'{self.frames.describe()} (zero means the newest frame)'
                )
            if self.latest is not None and frame.sequence <= self.latest.sequence:
                return frame  # processed already: the prompt is carried from it to the newest
        processed = self._process(frame)
        if stamp_ns:
            self.frames.discard_until(frame.sequence)  # done: the loop must not take it again
        if not processed:
            raise FrameError(
                f'tracking failed on frame {stamp_text(frame.stamp_ns)}, so it cannot be '
                'prompted on (see the log); prompt a later frame'
            )
        return frame

    # ------------------------------------------------------------------ loop

    def _run(self) -> None:
        while not self._stop.is_set():
            self._run_jobs()
            frame = self.frames.take(self._idle_wait)
            if frame is None:
                continue
            self._run_jobs()  # a job submitted while waiting applies before the frame
            if self.latest is None or frame.sequence > self.latest.sequence:
                self._process(frame)  # unless a stamped prompt already went past it

    def _run_jobs(self) -> None:
        while not self._stop.is_set():
            with self._jobs_lock:
                if not self._jobs:
                    return
                future, job = self._jobs.popleft()
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(job())
                except BaseException as error:  # noqa: BLE001 - handed to the waiter
                    future.set_exception(error)

    def _process(self, frame: Frame) -> bool:
        """Track one frame and publish it; False (logged and counted) when the pipeline raised."""
        try:
            result = self.pipeline.process(frame.rgb, frame.header.stamp)
        except Exception:  # noqa: BLE001 - one bad frame must not end tracking
            self.failures += 1
            logger.exception('tracking failed on frame %s', stamp_text(frame.stamp_ns))
            return False
        self.latest = frame
        self._on_result(frame, result)
        return True
