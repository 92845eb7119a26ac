"""The node's threading model, free of ROS: a frame buffer and one tracking worker.

- Image callbacks `FrameBuffer.put` a decoded frame and return: it becomes the newest frame
  (replacing, and counting as dropped, one the worker had not taken yet) and enters a short
  ring of recent frames used by stamped prompts. Nothing queues without bound.
- One `TrackingWorker` thread drives the pipeline: it runs queued jobs (removals, resets,
  configuration changes) first, then the newest frame. In the asynchronous modes SAM 2 runs
  on the pipeline's own thread, so this loop answers every frame at the cost of flow.
- Prompts (`submit_prompt`) wait in a queue for the frame they name: a stamp the worker has
  not received yet waits for it, up to `prompt_wait_sec`. The named frame is processed first
  if the worker skipped it; the pipeline then carries the prompt from it to the frame SAM 2
  runs on. Their futures complete when SAM 2 has applied them.
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

from sam2_ros.core.pipeline import FrameResult, TrackingPipeline
from sam2_ros.core.prompts import FrameError, PromptError, scale_from_canvas
from sam2_ros.core.stamps import stamp_text

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

    @property
    def history(self) -> int:
        """How many recent frames the ring keeps."""
        return self._history.maxlen

    def newest_stamp(self) -> int | None:
        """Return the stamp of the newest frame received, or None before the first."""
        with self._condition:
            return self._history[-1].stamp_ns if self._history else None

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


@dataclass
class _WaitingPrompt:
    request: PromptRequest
    future: Future  # of a PromptResult
    deadline: float  # time.monotonic() after which a frame that has not arrived is given up


class TrackingWorker:
    """Drives the pipeline with the newest frame; runs jobs and queued prompts between frames."""

    def __init__(
        self,
        pipeline: TrackingPipeline,
        frames: FrameBuffer,
        on_result: Callable[[Frame, FrameResult], None],
        idle_wait: float = 0.05,
        prompt_wait: float = 2.0,
    ) -> None:
        """Track `frames` with `pipeline`; `on_result` publishes (called on the worker).

        `prompt_wait`: seconds a prompt waits for a frame that has not arrived yet.
        """
        self.pipeline = pipeline
        self.frames = frames
        self._on_result = on_result
        self._idle_wait = idle_wait
        self.prompt_wait = prompt_wait
        self._jobs: collections.deque[tuple[Future, Callable]] = collections.deque()
        self._jobs_lock = threading.Lock()
        self._prompts: collections.deque[_WaitingPrompt] = collections.deque()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.latest: Frame | None = None  # the newest processed frame
        self._indices: collections.OrderedDict[int, int] = collections.OrderedDict()
        self._taken = 0  # sequence of the newest frame given to the pipeline
        self._failed: collections.deque[int] = collections.deque(maxlen=frames.history)
        self.failures = 0  # frames the pipeline raised on

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start the worker thread."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name='sam2_tracking', daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop after the current frame or job; cancel queued work. False if it did not end."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            alive = self._thread.is_alive()
        else:
            alive = False
        with self._jobs_lock:
            jobs, self._jobs = list(self._jobs), collections.deque()
            prompts, self._prompts = list(self._prompts), collections.deque()
        for future, _ in jobs:
            future.cancel()
        for waiting in prompts:
            waiting.future.cancel()
        if not alive:  # SAM 2's step in flight, if any, finishes and merges on the last frame
            alive = not self.pipeline.drain(timeout)
        return not alive

    @property
    def running(self) -> bool:
        """Whether the worker thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    # ------------------------------------------------------------------ jobs and prompts

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

    def submit_prompt(self, request: PromptRequest) -> Future:
        """Queue a prompt (any thread); the future's result is a PromptResult.

        It fails with the reason (PromptError, FrameError, UnknownObjectError) when the prompt
        cannot be applied; nothing changes then.
        """
        future: Future = Future()
        if self._stop.is_set() or not self.running:
            future.set_exception(RuntimeError('the tracking worker is not running'))
            return future
        with self._jobs_lock:
            self._prompts.append(
                _WaitingPrompt(request, future, time.monotonic() + self.prompt_wait)
            )
        self.frames.wake()
        return future

    def _serve_prompts(self) -> None:
        """Hand queued prompts whose frame is here to the pipeline, in order."""
        while True:
            with self._jobs_lock:
                if not self._prompts:
                    return
                waiting = self._prompts[0]
            if waiting.future.cancelled():
                self._pop_prompt()
                continue
            try:
                target = self._prompt_frame(waiting)
            except (PromptError, FrameError) as error:
                self._pop_prompt()
                if waiting.future.set_running_or_notify_cancel():
                    waiting.future.set_exception(error)
                continue
            if target is None:
                return  # its frame has not arrived yet: later prompts wait behind it
            self._pop_prompt()
            if not waiting.future.set_running_or_notify_cancel():
                continue  # the caller gave up: nothing is applied
            try:
                _chain(self._hand_over(waiting.request, target), waiting.future)
            except (PromptError, FrameError) as error:
                waiting.future.set_exception(error)

    def _pop_prompt(self) -> None:
        with self._jobs_lock:
            self._prompts.popleft()

    def _prompt_frame(self, waiting: _WaitingPrompt) -> Frame | None:
        """Return the frame a prompt names, processed; None while it may still arrive."""
        stamp_ns = waiting.request.stamp_ns
        if stamp_ns == 0:
            if self.latest is not None:
                return self.latest
            frame = self.frames.take(0.0)  # received, not taken yet: track it now
            newest = self.frames.newest_stamp()
            if frame is None and newest is not None:
                frame = self.frames.find(newest)  # taken already, and it failed
        else:
            frame = self.frames.find(stamp_ns)
            newest = self.frames.newest_stamp()
            if frame is None and newest is not None and stamp_ns <= newest:
                raise PromptError(
                    f'no buffered frame has stamp {stamp_text(stamp_ns)}; '
                    f'{self.frames.describe()} (zero means the newest frame)'
                )
        if frame is None:  # it has not arrived yet
            if time.monotonic() < waiting.deadline:
                return None
            what = f'with stamp {stamp_text(stamp_ns)} ' if stamp_ns else ''
            raise FrameError(
                f'no frame {what}arrived within prompt_wait_sec={self.prompt_wait:g} s; '
                + self.frames.describe()
            )
        if frame.sequence in self._indices:
            return frame  # processed already: the prompt is carried from it
        if frame.sequence > self._taken:
            self._process(frame)
            self.frames.discard_until(frame.sequence)  # done: the loop must not take it again
            if frame.sequence in self._indices:
                return frame
        if frame.sequence in self._failed:
            raise FrameError(
                f'tracking failed on frame {stamp_text(frame.stamp_ns)}, so it cannot be '
                'prompted on (see the log); prompt a later frame'
            )
        raise FrameError(
            f'frame {stamp_text(frame.stamp_ns)} was skipped for a newer frame, so a prompt '
            'cannot be carried from it; prompt a frame answered on tracked_objects, or stamp 0'
        )

    def _hand_over(self, request: PromptRequest, target: Frame) -> Future:
        """Scale a prompt to the target frame's pixels and queue it in the pipeline."""
        points, box = request.points, request.box
        height, width = target.rgb.shape[:2]
        if request.canvas is not None:  # coordinates of a scaled view of the target frame
            if points is not None:
                points = scale_from_canvas(points, request.canvas, (width, height))
            if box is not None:
                box = scale_from_canvas(box.reshape(2, 2), request.canvas, (width, height))
                box = box.ravel()
        return self.pipeline.submit_prompt(
            request.obj_id,
            points,
            request.labels,
            box,
            request.mask,
            label=request.label,
            source_index=self._indices[target.sequence],
        )

    # ------------------------------------------------------------------ loop

    def _run(self) -> None:
        while not self._stop.is_set():
            self._run_jobs()
            self._serve_prompts()
            frame = self.frames.take(self._idle_wait)
            if frame is None:
                self.pipeline.poll()  # a paused stream: finish what SAM 2 did
                continue
            self._run_jobs()  # a job submitted while waiting applies before the frame
            if frame.sequence > self._taken:
                self._process(frame)  # unless a prompt already took it or went past it

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
        self._taken = max(self._taken, frame.sequence)
        try:
            result = self.pipeline.process(frame.rgb, frame.stamp_ns)
        except Exception:  # noqa: BLE001 - one bad frame must not end tracking
            self.failures += 1
            self._failed.append(frame.sequence)
            logger.exception('tracking failed on frame %s', stamp_text(frame.stamp_ns))
            return False
        self.latest = frame
        self._indices[frame.sequence] = result.frame_index
        while len(self._indices) > self.frames.history:
            self._indices.popitem(last=False)
        self._on_result(frame, result)
        return True


def _chain(source: Future, target: Future) -> None:
    """Complete `target` (running already) with `source`'s outcome."""

    def copy(done: Future) -> None:
        error = done.exception()
        if error is not None:
            target.set_exception(error)
        else:
            target.set_result(done.result())

    source.add_done_callback(copy)
