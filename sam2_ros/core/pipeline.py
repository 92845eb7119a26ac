"""The per-frame tracking pipeline: SAM 2 on keyframes, optical flow in between.

For every frame the previous masks are carried by flow (cheap), and the scheduler decides from
the flow's own confidence and the objects' states whether SAM 2 should run (a keyframe). What
SAM 2 does on a keyframe (drift checks, re-anchoring, auto-tracking) is `KeyframeStage`'s job.
Where it runs is the mode's:

- `sync`: inside the frame loop, on the keyframe itself. Exact and deterministic, but a frame
  waits for SAM 2.
- `async`: on a thread of its own. A keyframe starts on the newest frame when one is due and
  SAM 2 is idle (never queued behind itself); the frame path goes on answering every frame
  from flow. SAM 2 works on copies of the objects as they stood on its frame *k*, so drift is
  judged against the flow mask of frame *k* and re-anchoring uses the detections of frame
  *k*. When the result is in, the masks SAM 2 changed are carried from *k* to the present
  frame through the buffered frames by the same flow, and merged; masks SAM 2 kept (the
  flow's) are already there. Nothing from SAM 2 is published on a frame it was not computed
  or carried to.
- `fixed_delay`: `async` whose keyframe results are merged on exactly frame *k + d*
  (`keyframe_delay_frames`; the frame path waits for a late one), so that runs repeat exactly
  and the accuracy cost of a SAM 2 latency of *d* frames can be measured.

Out of memory: a keyframe or prompt on which SAM 2 runs out of memory is abandoned whole
(`KeyframeStage.transaction`) and the frame path goes on with flow for every object; the
first one of an episode is logged at ERROR, and while they repeat `MemoryGovernor` degrades in
its stated order (refuse new objects, smaller object groups, a lower SAM 2 rate), undone
step by step as SAM 2 steps succeed again (see sam2_ros/core/memory.py).

Prompts take the same path: `submit_prompt` queues one, it runs on SAM 2's thread as soon as
SAM 2 is idle, on the newest frame (the prompt's geometry carried there from the frame it was
given on), and its result is carried and merged like a keyframe's. `add_object` and `refine`
are the blocking forms for library use. Removing or resetting while SAM 2 works discards its
result for the objects concerned.

The pipeline is driven by one thread (`process`, `poll`, prompts, `remove`, `reset`); in the
asynchronous modes it owns one more, for SAM 2.
"""

from __future__ import annotations

import collections
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field, replace
import logging
import threading
import time

import cv2
import numpy as np

from sam2_ros.core.drift import DriftConfig
from sam2_ros.core.flow import Anchor, FlowConfig, FlowFrame, FlowPropagator, Propagation
from sam2_ros.core.keyframe_stage import (
    KeyframeStage,
    SamFrame,
    Track,
    follow,
    mask_box,
)
from sam2_ros.core.keyframes import FrameSignals, KeyframeConfig, KeyframeScheduler
from sam2_ros.core.matching import MatchConfig
from sam2_ros.core.memory import Sam2OutOfMemoryError
from sam2_ros.core.prompt_transport import CarriedPrompt, carry_prompt_prepared
from sam2_ros.core.prompts import FrameError, PromptError, make_prompt, validate_frame
from sam2_ros.core.tracking_types import (
    Detector,
    ObjectResult,
    Segmenter,
    TrackState,
    UnknownObjectError,
)

__all__ = [
    'FrameResult',
    'PipelineConfig',
    'PipelineStats',
    'PromptResult',
    'TrackedObject',
    'TrackingPipeline',
    'mask_box',
]

logger = logging.getLogger(__name__)

NO_OBJECTS = 'no_objects'
SAM2_BUSY = 'sam2_busy'  # a keyframe was due, SAM 2 still works on an earlier one
PROMPT = 'prompt'  # SAM 2 started on this frame for waiting prompts
KEYFRAME = 'keyframe'
MEMORY_BACKOFF = 'memory_backoff'  # a keyframe was due, held back: SAM 2 is short of memory
SYNC, ASYNC, FIXED_DELAY = 'sync', 'async', 'fixed_delay'
MODES = (SYNC, ASYNC, FIXED_DELAY)
_PROMPT_ERRORS = (PromptError, FrameError, UnknownObjectError)


@dataclass
class PipelineConfig:
    """Everything tunable about the pipeline; fields may change between frames."""

    keyframes: KeyframeConfig = field(default_factory=KeyframeConfig)
    drift: DriftConfig = field(default_factory=DriftConfig)
    matching: MatchConfig = field(default_factory=MatchConfig)
    flow: FlowConfig = field(default_factory=FlowConfig)
    reanchoring: bool = True  # re-prompt drifting objects from detections
    lost_after_keyframes: int = 3  # keyframes of unresolved drift before an object is LOST
    auto_track_classes: tuple[str, ...] = ()  # detector classes that start objects by themselves
    auto_track_min_score: float = 0.5
    max_objects: int = 16
    label_min_iou: float = 0.3  # a detection labels a new object when its box overlaps this much
    mode: str = SYNC  # where SAM 2 runs: sync | async | fixed_delay (see the module docstring)
    keyframe_delay_frames: int = 5  # fixed_delay: a result of frame k is merged on k + this
    frame_history: int = 30  # frames kept for carrying stamped prompts
    max_lag_frames: int = 300  # a SAM 2 result older than this many frames is discarded

    def validate(self) -> None:
        """Raise ValueError naming the first invalid field."""
        self.keyframes.validate()
        self.drift.validate()
        self.matching.validate()
        if self.lost_after_keyframes < 1:
            raise ValueError(f'lost_after_keyframes must be >= 1, got {self.lost_after_keyframes}')
        if self.max_objects < 1:
            raise ValueError(f'max_objects must be >= 1, got {self.max_objects}')
        for name in ('auto_track_min_score', 'label_min_iou'):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f'{name} must be in [0, 1], got {value}')
        if self.mode not in MODES:
            raise ValueError(f'mode must be one of {", ".join(MODES)}, got {self.mode!r}')
        if self.keyframe_delay_frames < 1:
            raise ValueError(
                f'keyframe_delay_frames must be >= 1, got {self.keyframe_delay_frames}'
            )
        if self.frame_history < 1:
            raise ValueError(f'frame_history must be >= 1, got {self.frame_history}')
        if self.max_lag_frames < self.keyframe_delay_frames:
            raise ValueError(
                f'max_lag_frames ({self.max_lag_frames}) must be >= keyframe_delay_frames '
                f'({self.keyframe_delay_frames})'
            )


@dataclass(frozen=True)
class TrackedObject:
    """One object on one frame, as the pipeline publishes it."""

    obj_id: int
    label: str
    class_id: int  # -1 when unknown
    class_name: str
    state: TrackState
    mask: np.ndarray  # (H, W) bool
    box: tuple[int, int, int, int] | None  # x_min, y_min, x_max, y_max (exclusive); None if empty
    centroid: tuple[float, float] | None  # (x, y), continuous pixels (as prompts); None if empty
    area: int
    score: float  # SAM 2 predicted IoU at the last keyframe
    visibility: float  # SAM 2 object presence at the last keyframe
    propagation_confidence: float  # 1.0 on keyframes
    frames_since_keyframe: int  # frames since the keyframe whose SAM 2 result this descends from
    keyframe_stamp: int | None  # header stamp of that keyframe, ns; None before SAM 2 ran
    reanchor_count: int


@dataclass(frozen=True)
class FrameResult:
    """The pipeline's output for one frame."""

    frame_index: int
    stamp: int | None  # the frame's header stamp, integer nanoseconds (as given to process)
    is_keyframe: bool  # SAM 2 ran (sync) or started (asynchronous modes) on this frame
    keyframe_reasons: tuple[str, ...]
    objects: list[TrackedObject]  # sorted by id
    events: list[str]  # e.g. 'reanchored 3', 'lost 2 (drift)', 'recovered 2', 'added 5 (car)'
    timings_ms: dict[str, float]  # per stage: prepare, flow, sam2, detector, carry, total
    merged_keyframe: int | None = None  # asynchronous: frame whose SAM 2 result merged here


@dataclass(frozen=True)
class PromptResult:
    """What a prompt did, on the frame SAM 2 applied it to."""

    obj: TrackedObject
    sam: ObjectResult  # SAM 2's output, with multimask candidates
    carried: CarriedPrompt | None  # how the prompt moved from the frame it was given on


@dataclass
class PipelineStats:
    """Counters since the pipeline started (for diagnostics)."""

    frames: int = 0
    keyframes: int = 0  # SAM 2 keyframes run (sync) or started (asynchronous)
    reanchors: int = 0
    drift_detections: int = 0
    lost_events: int = 0
    recoveries: int = 0
    auto_added: int = 0
    sam2_results: int = 0  # SAM 2 jobs (keyframes and prompts) finished
    sam2_failures: int = 0  # SAM 2 jobs that raised; their results are dropped
    sam2_discarded: int = 0  # results dropped: reset meanwhile, or older than max_lag_frames
    sam2_last_ms: float = 0.0  # duration of the last SAM 2 job
    sam2_last_lag_frames: int = 0  # frames between a result's keyframe and its merge
    sam2_max_lag_frames: int = 0
    _finished: collections.deque = field(default_factory=lambda: collections.deque(maxlen=64))

    def sam2_finished(self, duration_ms: float) -> None:
        """Count one finished SAM 2 job (called on SAM 2's thread)."""
        self.sam2_results += 1
        self.sam2_last_ms = duration_ms
        self._finished.append(time.monotonic())

    def sam2_rate(self, window_s: float = 10.0) -> float:
        """SAM 2 jobs finished per second over the last `window_s` seconds."""
        now = time.monotonic()
        recent = [t for t in list(self._finished) if now - t <= window_s]
        if len(recent) < 2:
            return 0.0
        return (len(recent) - 1) / max(recent[-1] - recent[0], 1e-6)


@dataclass
class _Outcome:
    """What a SAM 2 job produced on frame `sf.index`, carried as far as it got."""

    sf: SamFrame  # the objects after SAM 2, on its frame
    snapshot: dict[int, Track]  # the objects as the job found them
    events: list[str]
    timings: dict[str, float]
    carried: dict[int, tuple[np.ndarray, Anchor | None, float]]  # masks SAM 2 changed
    carried_to: int  # frame index the carried masks are on
    new_ids: frozenset[int] = frozenset()  # objects the job started
    prompts: list = field(default_factory=list)  # per prompt: PromptResult, or why it failed


@dataclass
class _Job:
    kind: str  # KEYFRAME or PROMPT
    index: int
    generation: int
    future: Future  # of an _Outcome
    callers: tuple[Future, ...] = ()  # the prompts' PromptResults, in order


@dataclass
class _PendingPrompt:
    obj_id: int  # 0 = a new object
    points: np.ndarray | None
    labels: np.ndarray | None
    box: np.ndarray | None
    mask: np.ndarray | None
    label: str
    source_index: int  # frame the geometry is given on
    generation: int
    caller: Future


def public_object(track: Track, frame_index: int) -> TrackedObject:
    """Return the published view of a track on frame `frame_index`."""
    box = mask_box(track.mask)
    centroid, area = None, 0
    if box is not None:
        x0, y0, x1, y1 = box
        moments = cv2.moments(track.mask[y0:y1, x0:x1].view(np.uint8), binaryImage=True)
        area = int(moments['m00'])
        # Continuous pixel coordinates, as prompts take them: pixel c covers [c, c + 1).
        centroid = (x0 + 0.5 + moments['m10'] / area, y0 + 0.5 + moments['m01'] / area)
    return TrackedObject(
        obj_id=track.obj_id,
        label=track.label,
        class_id=track.class_id,
        class_name=track.class_name,
        state=track.state,
        mask=track.mask,
        box=box,
        centroid=centroid,
        area=area,
        score=track.score,
        visibility=track.visibility,
        propagation_confidence=track.flow_confidence,
        frames_since_keyframe=max(0, frame_index - track.keyframe_index),
        keyframe_stamp=track.keyframe_stamp,
        reanchor_count=track.reanchor_count,
    )


def _remasked(after: Track, before: Track) -> bool:
    """Whether SAM 2 gave the object another mask or anchor than the flow's on its frame."""
    if after.mask is not before.mask:
        return True
    if (after.anchor is None) != (before.anchor is None):
        return True
    if after.anchor is None:
        return False
    return after.anchor.mask is not before.anchor.mask or not np.array_equal(
        after.anchor.matrix, before.anchor.matrix
    )


class TrackingPipeline:
    """Keyframed SAM 2 tracking with flow propagation, drift detection and re-anchoring."""

    def __init__(
        self,
        segmenter: Segmenter,
        detector: Detector | None = None,
        config: PipelineConfig | None = None,
    ) -> None:
        """Track with `segmenter`; `detector` (optional) re-anchors, labels, auto-tracks."""
        self.config = config or PipelineConfig()
        self.config.validate()
        self.stats = PipelineStats()
        self.stage = KeyframeStage(segmenter, detector, self.config, self.stats)
        self.flow = FlowPropagator(self.config.flow)
        self.scheduler = KeyframeScheduler(self.config.keyframes)
        self._tracks: dict[int, Track] = {}
        self._frame: np.ndarray | None = None
        self._flow_frame: FlowFrame | None = None
        self._stamp: int | None = None
        self._frame_index = -1
        self._last_keyframe_index = -1
        # Asynchronous modes: SAM 2's thread, the job on it, what waits for it.
        self._executor: ThreadPoolExecutor | None = None
        self._job: _Job | None = None
        self._prompts: collections.deque[_PendingPrompt] = collections.deque()
        self._segmenter_ops: list = []  # removals and resets waiting for SAM 2 to be idle
        self._generation = 0  # bumped by reset: older results are void
        self._events: list[str] = []  # from merges between frames, reported on the next frame
        self._ring: dict[int, FlowFrame] = {}  # recent frames, for carrying
        self._ring_lock = threading.Lock()

    @property
    def segmenter(self) -> Segmenter:
        """The promptable video segmenter (SAM 2's streaming tracker, or a test double)."""
        return self.stage.segmenter

    @property
    def detector(self) -> Detector | None:
        """The detector that re-anchors, labels and auto-tracks, if any."""
        return self.stage.detector

    def update_config(self, config: PipelineConfig) -> None:
        """Switch to another configuration between frames (live parameter changes)."""
        config.validate()
        if config.mode != self.config.mode:
            self.drain()  # a result started under the old mode merges under it
        if config.flow != self.config.flow:
            self.flow = FlowPropagator(config.flow)
        self.config = config
        self.scheduler.config = config.keyframes
        self.stage.update_config(config)

    @property
    def object_ids(self) -> list[int]:
        """Ids of the tracked objects, ascending."""
        return sorted(self._tracks)

    @property
    def sam2_busy(self) -> bool:
        """Whether a SAM 2 job is in flight (asynchronous modes)."""
        return self._job is not None

    # ------------------------------------------------------------------ frames

    def process(self, frame: np.ndarray, stamp: int | None = None) -> FrameResult:
        """Track every object on the next frame (HxWx3 uint8 RGB) stamped `stamp` (ns)."""
        validate_frame(frame)
        timings: dict[str, float] = {}
        events, self._events = self._events, []
        start = time.perf_counter()
        flow_frame = self.flow.prepare(frame)
        timings['prepare'] = _ms(start)
        if self._flow_frame is not None and (
            self._flow_frame.width != flow_frame.width
            or self._flow_frame.height != flow_frame.height
        ):
            self._flow_frame = None  # a resolution change: nothing to propagate from
            with self._ring_lock:
                self._ring.clear()  # nor to carry a SAM 2 result through
            for track in self._tracks.values():
                track.mask = np.zeros(frame.shape[:2], dtype=bool)
                track.anchor = None
        index = self._frame_index + 1

        propagations: dict[int, Propagation] = {}
        t = time.perf_counter()
        if self._flow_frame is not None:
            movable = {
                obj_id: track.mask
                for obj_id, track in self._tracks.items()
                if track.state != TrackState.LOST and track.mask.any()
            }
            if movable:
                anchors = {
                    obj_id: self._tracks[obj_id].anchor
                    for obj_id in movable
                    if self._tracks[obj_id].anchor is not None
                }
                propagations = self.flow.propagate(self._flow_frame, flow_frame, movable, anchors)
        timings['flow'] = _ms(t)

        self._frame, self._flow_frame, self._stamp, self._frame_index = (
            frame,
            flow_frame,
            stamp,
            index,
        )
        with self._ring_lock:
            self._ring[index] = flow_frame
        self.stats.frames += 1
        merged = None
        if self.config.mode == SYNC:
            is_keyframe, reasons = self._decide(index, propagations)
            if is_keyframe:
                self._start_keyframe(index)
                sf = SamFrame(frame, stamp, index, self._tracks)
                try:
                    self._sam(
                        lambda: self.stage.keyframe(sf, propagations, timings, events), events
                    )
                except Sam2OutOfMemoryError:
                    self._propagate(propagations, events)  # nothing of SAM 2's was applied
            else:
                self._propagate(propagations, events)
        else:
            self._propagate(propagations, events)  # the flow answers every frame
            merged = self._collect(index, timings, events, on_frame=True)
            due, reasons = self._decide(index, propagations, merged is not None)
            started = self._dispatch(index, due, propagations)
            is_keyframe = started is not None
            if started == PROMPT:
                reasons = (PROMPT,)
            elif due and not is_keyframe:
                reasons += (SAM2_BUSY,)
        self._trim_ring()
        timings['total'] = _ms(start)
        return FrameResult(
            frame_index=index,
            stamp=stamp,
            is_keyframe=is_keyframe,
            keyframe_reasons=reasons,
            objects=self.snapshot(),
            events=events,
            timings_ms=timings,
            merged_keyframe=merged,
        )

    def poll(self) -> None:
        """Between frames: merge a finished prompt and start the next queued one.

        Call it when no frame is coming (the driving thread's idle loop), so a prompt is
        answered on a paused stream too. In `async` mode a finished keyframe merges as well;
        in `fixed_delay` it waits for its frame unless a prompt needs SAM 2.
        """
        if self.config.mode == SYNC or self._frame is None:
            return
        index = self._frame_index
        self._collect(index, {}, self._events, on_frame=False)
        self._dispatch(index, False, {})

    def snapshot(self) -> list[TrackedObject]:
        """Return the objects as of the latest frame, sorted by id."""
        return [public_object(self._tracks[i], self._frame_index) for i in sorted(self._tracks)]

    def _decide(
        self, index: int, propagations: dict[int, Propagation], merged: bool = False
    ) -> tuple[bool, tuple]:
        """Ask the scheduler; `merged`: judge the flow by the tracks (a result just merged)."""
        if not self._tracks and not self.stage.auto_tracking():
            return False, (NO_OBJECTS,)
        since = -1 if self._last_keyframe_index < 0 else index - self._last_keyframe_index - 1
        confidences = [p.confidence for p in propagations.values()]
        if merged:  # the carried masks' confidence along the way, not the stale masks'
            confidences = [
                t.flow_confidence
                for t in self._tracks.values()
                if t.state != TrackState.LOST and t.mask.any()
            ]
        signals = FrameSignals(
            frames_since_keyframe=since,
            drift_suspected=any(t.drift_suspected for t in self._tracks.values()),
            lost_objects=sum(t.state == TrackState.LOST for t in self._tracks.values()),
            min_flow_confidence=min(confidences) if confidences else None,
            max_motion_px=max((p.motion_px for p in propagations.values()), default=0.0),
        )
        decision = self.scheduler.decide(signals)
        divisor = self.stage.memory.rate_divisor
        if decision.is_keyframe and divisor > 1 and since >= 0:
            if since + 1 < divisor * self.config.keyframes.interval:
                return False, (MEMORY_BACKOFF,)
        return decision.is_keyframe, decision.reasons

    def _propagate(self, propagations: dict, events: list[str]) -> None:
        for obj_id, track in self._tracks.items():
            if track.state == TrackState.LOST:
                continue
            propagation = propagations.get(obj_id)
            if propagation is None:
                continue
            follow(track, propagation)
            if not propagation.mask.any():
                self.stage.lose(track, 'left_view', events)
            else:
                track.state = TrackState.PROPAGATED

    def _start_keyframe(self, index: int) -> None:
        self.stats.keyframes += 1
        self._last_keyframe_index = index

    # ------------------------------------------------------------------ SAM 2's thread

    def _dispatch(self, index: int, keyframe_due: bool, propagations) -> str | None:
        """Start the next SAM 2 job if SAM 2 is idle: waiting prompts first, else a keyframe.

        Returns what started: PROMPT, KEYFRAME or None.
        """
        if self._job is not None:
            return None
        self._run_segmenter_ops()
        batch = self._take_prompts(index)
        if batch:  # every waiting prompt, on this frame: one SAM 2 step for all of them
            if self.stage.sam_frame_index != index:
                self._start_keyframe(index)
            future = self._submit(self._prompt_job(batch, index))
            callers = tuple(pending.caller for pending, _ in batch)
            self._job = _Job(PROMPT, index, self._generation, future, callers)
            return PROMPT
        if not keyframe_due:
            return None
        self._start_keyframe(index)
        sf, snapshot = self._copy_tracks(index)

        def job() -> _Outcome:
            timings: dict[str, float] = {}
            events: list[str] = []
            self.stage.keyframe(sf, propagations, timings, events)
            return self._finish(sf, snapshot, events, timings)

        self._job = _Job(KEYFRAME, index, self._generation, self._submit(job))
        return KEYFRAME

    def _submit(self, job) -> Future:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix='sam2')
        start = time.perf_counter()

        def timed() -> _Outcome:
            try:
                return job()
            finally:
                self.stats.sam2_finished(_ms(start))

        return self._executor.submit(timed)

    def _copy_tracks(self, index: int) -> tuple[SamFrame, dict[int, Track]]:
        """Copy the objects as they stand now: one for SAM 2 to change, one to compare with."""
        snapshot = {obj_id: replace(track) for obj_id, track in self._tracks.items()}
        shadow = {obj_id: replace(track) for obj_id, track in snapshot.items()}
        return SamFrame(self._frame, self._stamp, index, shadow), snapshot

    def _take_prompts(self, index: int) -> list[tuple[_PendingPrompt, list[FlowFrame]]]:
        """Every queued prompt that can run, with the frames it is carried through."""
        batch = []
        while self._prompts:
            pending = self._prompts.popleft()
            if not pending.caller.set_running_or_notify_cancel():
                continue  # the caller gave up before it started
            if pending.generation != self._generation:
                pending.caller.set_exception(
                    PromptError('tracking was reset before this prompt could be applied')
                )
                continue
            frames = self._ring_span(pending.source_index, index)
            if frames is None:
                pending.caller.set_exception(
                    PromptError(
                        f'the prompted frame (index {pending.source_index}) is no longer '
                        'buffered; prompt a more recent frame'
                    )
                )
                continue
            batch.append((pending, frames))
        return batch

    def _prompt_job(self, batch: list[tuple[_PendingPrompt, list[FlowFrame]]], index: int):
        sf, snapshot = self._copy_tracks(index)

        def job() -> _Outcome:
            answers: list = []
            for pending, frames in batch:
                try:
                    track, result, carried = self._apply_prompt(sf, pending, frames)
                except (*_PROMPT_ERRORS, Sam2OutOfMemoryError) as error:
                    answers.append(error)  # this prompt only; nothing of it was applied
                    continue
                # The object as SAM 2 saw it on its frame, before the merge carries it on.
                answers.append(PromptResult(public_object(track, sf.index), result, carried))
            outcome = self._finish(sf, snapshot, [], {})
            outcome.prompts = answers
            return outcome

        return job

    def _apply_prompt(self, sf: SamFrame, pending: _PendingPrompt, frames: list[FlowFrame]):
        """Carry a prompt's geometry to `sf` and give it to SAM 2 there."""
        points, labels, box, mask = pending.points, pending.labels, pending.box, pending.mask
        carried = None
        if len(frames) > 1:
            height, width = sf.frame.shape[:2]
            prompt = make_prompt(width, height, points, labels, box, mask)
            carried = carry_prompt_prepared(prompt, frames, self.flow)
            moved = carried.prompt
            points, labels, box, mask = moved.points, moved.labels, moved.box, moved.mask
            if not len(points):
                points = labels = None
        if pending.obj_id == 0:
            track, result = self.stage.add_object(
                sf, points, labels, box, mask, label=pending.label
            )
        else:
            track, result = self.stage.refine(
                sf, pending.obj_id, points, labels, box, mask, label=pending.label
            )
        return track, result, carried

    def _finish(self, sf: SamFrame, snapshot, events, timings) -> _Outcome:
        """On SAM 2's thread: carry the masks SAM 2 changed as far as the frames have come."""
        changed = {
            obj_id: track
            for obj_id, track in sf.tracks.items()
            if obj_id not in snapshot or _remasked(track, snapshot[obj_id])
        }
        t = time.perf_counter()
        carried, upto = self._carry(changed, sf.index, None)
        timings['carry'] = _ms(t)
        new_ids = frozenset(sf.tracks) - frozenset(snapshot)
        return _Outcome(sf, snapshot, events, timings, carried, upto, new_ids)

    def _due(self, job: _Job, index: int, on_frame: bool) -> bool:
        """Whether the job's result merges now (on its frame, fixed_delay waits for it)."""
        if self.config.mode == FIXED_DELAY and job.kind == KEYFRAME:
            if index >= job.index + self.config.keyframe_delay_frames:
                return on_frame
            # Early only on a paused stream, to free SAM 2 for a waiting prompt.
            return not on_frame and bool(self._prompts) and job.future.done()
        return job.future.done()

    def _collect(self, index: int, timings, events, on_frame: bool, force=False) -> int | None:
        """Merge the finished SAM 2 job, when its time has come; return its frame index."""
        job = self._job
        if job is None or not (force or self._due(job, index, on_frame)):
            return None
        self._job = None
        try:
            outcome: _Outcome = job.future.result()  # waits only where fixed_delay says so
        except Sam2OutOfMemoryError as error:
            self._memory_failed(error, events)  # undone whole; the frame path carried them all
            for caller in job.callers:
                caller.set_exception(error)
            return None
        except Exception as error:  # noqa: BLE001 - a failed step must not end tracking
            self.stats.sam2_failures += 1
            logger.error(
                'SAM 2 failed on frame %d: %s: %s', job.index, type(error).__name__, error
            )
            events.append(f'sam2 failed on frame {job.index} ({type(error).__name__})')
            for caller in job.callers:
                caller.set_exception(error)
            return None
        if job.generation != self._generation or index - job.index > self.config.max_lag_frames:
            self.stats.sam2_discarded += 1
            reason = (
                'tracking was reset'
                if job.generation != self._generation
                else (f'SAM 2 took longer than max_lag_frames={self.config.max_lag_frames} frames')
            )
            for caller in job.callers:
                caller.set_exception(PromptError(f'{reason} while this prompt was applied'))
            return None
        t = time.perf_counter()
        if not self._merge(outcome, index, events):
            for caller in job.callers:
                caller.set_exception(
                    PromptError('the frames since the prompted frame are no longer buffered')
                )
            return None
        timings['carry'] = outcome.timings.get('carry', 0.0) + _ms(t)
        for name in ('sam2', 'detector'):
            if name in outcome.timings:
                timings[name] = outcome.timings[name]
        events.extend(outcome.events)
        lag = index - job.index
        self.stats.sam2_last_lag_frames = lag
        self.stats.sam2_max_lag_frames = max(self.stats.sam2_max_lag_frames, lag)
        for answer in outcome.prompts or [outcome]:
            if isinstance(answer, Sam2OutOfMemoryError):
                self._memory_failed(answer, events)
            elif not isinstance(answer, Exception):
                self._memory_ok(events)
        for caller, answer in zip(job.callers, outcome.prompts, strict=True):
            if isinstance(answer, Exception):
                caller.set_exception(answer)
            elif answer.obj.obj_id not in self._tracks:
                caller.set_exception(
                    UnknownObjectError(f'object {answer.obj.obj_id} was removed meanwhile')
                )
            else:
                caller.set_result(answer)
        return job.index

    def _merge(self, outcome: _Outcome, index: int, events: list[str]) -> bool:
        """Bring a SAM 2 result to frame `index` and take it; False if it could not be."""
        carried, upto = outcome.carried, outcome.carried_to
        if upto < index:
            rest = {obj_id: outcome.sf.tracks[obj_id] for obj_id in carried}
            for obj_id, (mask, anchor, confidence) in carried.items():
                rest[obj_id] = replace(
                    rest[obj_id], mask=mask, anchor=anchor, flow_confidence=confidence
                )
            carried, upto = self._carry(rest, upto, index)
        if upto != index:
            self.stats.sam2_discarded += 1
            return False
        for obj_id, track in outcome.sf.tracks.items():
            live = self._tracks.get(obj_id)
            if live is None and obj_id not in outcome.new_ids:
                continue  # removed while SAM 2 worked on it
            if obj_id in carried:
                track.mask, track.anchor, confidence = carried[obj_id]
                if index != outcome.sf.index:
                    track.flow_confidence = confidence
                if track.state != TrackState.LOST and not track.mask.any():
                    self.stage.lose(track, 'left_view', events)
            else:  # SAM 2 kept the flow's mask, which the frame path has carried since
                track.mask, track.anchor = live.mask, live.anchor
                track.flow_confidence = live.flow_confidence
                if live.state == TrackState.LOST and track.state != TrackState.LOST:
                    track.state, track.lost_reason = live.state, live.lost_reason
            self._tracks[obj_id] = track
        return True

    def _carry(self, tracks: dict[int, Track], start: int, end: int | None):
        """Carry masks from frame `start` to `end` (None: the newest) through the ring.

        Returns ({id: (mask, anchor, lowest flow confidence on the way)}, the frame reached);
        the frame reached is `start` when a frame on the way is missing.
        """
        result = {t.obj_id: (t.mask, t.anchor, t.flow_confidence) for t in tracks.values()}
        with self._ring_lock:
            if end is None:
                end = max(self._ring, default=start)
            frames = [self._ring.get(i) for i in range(start, end + 1)]
        if not frames or any(f is None for f in frames):
            return result, start
        movable = {i: mask for i, (mask, _, _) in result.items() if mask.any()}
        for previous, current in zip(frames[:-1], frames[1:], strict=True):
            if not movable:
                break
            anchors = {i: result[i][1] for i in movable if result[i][1] is not None}
            moved = self.flow.propagate(previous, current, movable, anchors)
            for obj_id, propagation in moved.items():
                anchor, confidence = result[obj_id][1], result[obj_id][2]
                if anchor is not None and propagation.anchor_matrix is not None:
                    anchor = Anchor(anchor.mask, propagation.anchor_matrix)
                confidence = min(confidence, propagation.confidence)  # the weakest step
                result[obj_id] = (propagation.mask, anchor, confidence)
                movable[obj_id] = propagation.mask
            movable = {i: m for i, m in movable.items() if m.any()}
        return result, start + len(frames) - 1

    def _ring_span(self, first: int, last: int) -> list[FlowFrame] | None:
        with self._ring_lock:
            frames = [self._ring.get(i) for i in range(first, last + 1)]
        return None if any(f is None for f in frames) else frames

    def _trim_ring(self) -> None:
        keep = self._frame_index - max(self.config.frame_history, 1) + 1
        if self._job is not None:
            keep = min(keep, self._job.index)
        if self._prompts:
            keep = min(keep, min(p.source_index for p in self._prompts))
        keep = max(keep, self._frame_index - self.config.max_lag_frames)
        with self._ring_lock:
            for index in [i for i in self._ring if i < keep]:
                del self._ring[index]

    def _run_segmenter_ops(self) -> None:
        """Apply removals and resets that waited for SAM 2 (its thread is idle now)."""
        ops, self._segmenter_ops = self._segmenter_ops, []
        for op in ops:
            op()

    def drain(self, timeout: float | None = None) -> bool:
        """Wait for the SAM 2 job in flight and merge it on the latest frame; False on timeout."""
        job = self._job
        if job is not None:
            try:
                job.future.exception(timeout)
            except FutureTimeout:
                return False
            self._collect(self._frame_index, {}, self._events, on_frame=False, force=True)
        self._run_segmenter_ops()
        return True

    def close(self, timeout: float = 30.0) -> bool:
        """Finish the job in flight, fail queued prompts and stop SAM 2's thread."""
        done = self.drain(timeout)
        while self._prompts:
            pending = self._prompts.popleft()
            if pending.caller.set_running_or_notify_cancel():
                pending.caller.set_exception(FrameError('the tracker is stopping'))
        if self._executor is not None:
            self._executor.shutdown(wait=done)
            self._executor = None
        return done

    # ------------------------------------------------------------------ prompts

    def submit_prompt(
        self,
        obj_id: int = 0,
        points=None,
        labels=None,
        box=None,
        mask=None,
        label: str = '',
        source_index: int | None = None,
    ) -> Future:
        """Queue a prompt given on frame `source_index` (None: the latest); a future result.

        `obj_id` 0 starts a new object, another id refines it. The future's result is a
        `PromptResult`, or the reason it could not be applied (PromptError, FrameError,
        UnknownObjectError). In sync mode it is applied at once, on the latest frame.
        """
        self._require_frame()
        source = self._frame_index if source_index is None else source_index
        if not 0 <= source <= self._frame_index:
            raise FrameError(f'frame index {source} has not been processed')
        caller: Future = Future()
        pending = _PendingPrompt(
            obj_id, points, labels, box, mask, label, source, self._generation, caller
        )
        if self.config.mode != SYNC:
            self._prompts.append(pending)
            self._dispatch(self._frame_index, False, {})
            return caller
        caller.set_running_or_notify_cancel()
        try:
            frames = self._ring_span(source, self._frame_index)
            if frames is None:
                raise PromptError(
                    f'the prompted frame (index {source}) is no longer buffered; '
                    'prompt a more recent frame'
                )
            sf = SamFrame(self._frame, self._stamp, self._frame_index, self._tracks)
            track, result, carried = self._sam(lambda: self._apply_prompt(sf, pending, frames))
            self._last_keyframe_index = max(self._last_keyframe_index, self.stage.sam_frame_index)
            caller.set_result(
                PromptResult(public_object(track, self._frame_index), result, carried)
            )
        except Exception as error:  # noqa: BLE001 - handed to the caller
            caller.set_exception(error)
        return caller

    def add_object(
        self, points=None, labels=None, box=None, mask=None, label: str = '', obj_id=None
    ) -> tuple[TrackedObject, ObjectResult]:
        """Start an object from a prompt on the latest frame; returns it and SAM 2's output.

        Blocking: in the asynchronous modes it waits for SAM 2 to be idle first.
        """
        self._require_frame()
        self.drain()
        sf = SamFrame(self._frame, self._stamp, self._frame_index, self._tracks)
        track, result = self._sam(
            lambda: self.stage.add_object(sf, points, labels, box, mask, label, obj_id)
        )
        self._last_keyframe_index = max(self._last_keyframe_index, self.stage.sam_frame_index)
        return public_object(track, self._frame_index), result

    def refine(
        self, obj_id: int, points=None, labels=None, box=None, mask=None, label: str = ''
    ) -> tuple[TrackedObject, ObjectResult]:
        """Correct an object with a prompt on the latest frame (blocking, like `add_object`)."""
        self._require_frame()
        self.drain()
        sf = SamFrame(self._frame, self._stamp, self._frame_index, self._tracks)
        track, result = self._sam(
            lambda: self.stage.refine(sf, obj_id, points, labels, box, mask, label)
        )
        self._last_keyframe_index = max(self._last_keyframe_index, self.stage.sam_frame_index)
        return public_object(track, self._frame_index), result

    def remove(self, obj_id: int) -> None:
        """Stop tracking one object (a SAM 2 result in flight for it is discarded)."""
        if obj_id not in self._tracks:
            raise UnknownObjectError(
                f'unknown object id {obj_id!r}; tracked ids: {self.object_ids or "none"}'
            )
        del self._tracks[obj_id]
        self._segmenter_op(lambda: self.stage.remove(obj_id))
        self._objects_removed()

    def reset(self) -> int:
        """Remove every object; returns how many there were (results in flight are void)."""
        count = len(self._tracks)
        self._tracks.clear()
        self._generation += 1
        self._last_keyframe_index = -1
        self._segmenter_op(self.stage.reset)
        self._objects_removed()
        return count

    # ------------------------------------------------------------------ memory

    @property
    def memory(self):
        """The out-of-memory degradation state (a MemoryGovernor; read it, do not change it)."""
        return self.stage.memory

    def _sam(self, call, events: list[str] | None = None):
        """Run SAM 2 work on this thread, accounting for out-of-memory (re-raised)."""
        events = self._events if events is None else events
        try:
            result = call()
        except Sam2OutOfMemoryError as error:
            self._memory_failed(error, events)
            raise
        self._memory_ok(events)
        return result

    def _memory_failed(self, error: Sam2OutOfMemoryError, events: list[str]) -> None:
        """Report an abandoned SAM 2 step and degrade one step (driving thread, SAM 2 idle)."""
        memory = self.stage.memory
        first = not memory.in_episode
        changes = memory.on_out_of_memory(error, len(self._tracks))
        self._apply_group_size()
        if first:
            logger.error(
                'SAM 2 %s. The step was abandoned (nothing of it applied), flow carries every '
                'object; retrying on the next keyframe. Further failures of this episode are '
                'logged as the degradation they cause.',
                error,
            )
        events.append(f'sam2 out of memory ({error.action})')
        for change in changes:
            logger.warning(change)
            events.append(change)

    def _memory_ok(self, events: list[str]) -> None:
        """Count a successful SAM 2 step; log the recoveries it brings."""
        memory = self.stage.memory
        for change in memory.on_success(len(self._tracks)):
            logger.info(change)
            events.append(change)
        self._apply_group_size()

    def _objects_removed(self) -> None:
        for change in self.stage.memory.on_objects_removed(len(self._tracks)):
            logger.info(change)
            self._events.append(change)
        self._segmenter_op(self._apply_group_size)

    def _apply_group_size(self) -> None:
        self.segmenter.max_group_size = self.stage.memory.group_size

    def _segmenter_op(self, op) -> None:
        if self._job is None:
            op()
        else:
            self._segmenter_ops.append(op)  # after the job in flight, on this thread

    def _require_frame(self) -> None:
        if self._frame is None:
            raise FrameError('no frame yet: prompts apply to the latest processed frame')


def _ms(start: float) -> float:
    return 1000.0 * (time.perf_counter() - start)
