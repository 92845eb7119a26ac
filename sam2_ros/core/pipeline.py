"""The per-frame tracking pipeline: SAM 2 on keyframes, optical flow in between.

Drift is detected on keyframes and objects are re-anchored from detections under the same id.

For every frame: the previous masks are carried by flow (cheap, every frame); the scheduler
decides from the flow's own confidence and the objects' states whether SAM 2 runs; on a
keyframe, SAM 2's mask of each object is checked against the flow prediction and SAM 2's
scores (`DriftMonitor`). A drifting object is re-prompted from the detection that matches its
last reliable box (`StreamingTracker.reanchor`, which drops the polluted memories); with no
match for `lost_after_keyframes` keyframes it becomes LOST, and lost objects are searched for
on keyframes until SAM 2 or the detector finds them again, under the same id.

Prompts (`add_object`, `refine`, `remove`, `reset`) apply to the latest processed frame.
The pipeline is not thread-safe: one worker thread calls it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import time

import cv2
import numpy as np

from sam2_ros.core.drift import DriftConfig, DriftMonitor, Verdict
from sam2_ros.core.flow import (
    IDENTITY,
    Anchor,
    FlowConfig,
    FlowFrame,
    FlowPropagator,
    Propagation,
)
from sam2_ros.core.keyframes import FrameSignals, KeyframeConfig, KeyframeScheduler
from sam2_ros.core.matching import MatchConfig, MatchTarget, box_iou, match_detections, unclaimed
from sam2_ros.core.prompts import FrameError, PromptError, validate_frame
from sam2_ros.core.streaming_tracker import ObjectResult, UnknownObjectError
from sam2_ros.core.track_state import TrackState
from sam2_ros.core.tracking_types import Detection, Detector, Segmenter

NO_OBJECTS = 'no_objects'


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
    centroid: tuple[float, float] | None  # (x, y) pixels; None if empty
    area: int
    score: float  # SAM 2 predicted IoU at the last keyframe
    visibility: float  # SAM 2 object presence at the last keyframe
    propagation_confidence: float  # 1.0 on keyframes
    frames_since_keyframe: int
    keyframe_stamp: object  # stamp of the last frame SAM 2 ran on for this object
    reanchor_count: int


@dataclass(frozen=True)
class FrameResult:
    """The pipeline's output for one frame."""

    frame_index: int
    stamp: object
    is_keyframe: bool
    keyframe_reasons: tuple[str, ...]
    objects: list[TrackedObject]  # sorted by id
    events: list[str]  # e.g. 'reanchored 3', 'lost 2 (drift)', 'recovered 2', 'added 5 (car)'
    timings_ms: dict[str, float]  # per stage: prepare, flow, sam2, detector, total


@dataclass
class PipelineStats:
    """Counters since the pipeline started (for diagnostics)."""

    frames: int = 0
    keyframes: int = 0
    reanchors: int = 0
    drift_detections: int = 0
    lost_events: int = 0
    recoveries: int = 0
    auto_added: int = 0


@dataclass
class _Track:
    obj_id: int
    label: str
    class_id: int
    class_name: str
    mask: np.ndarray
    state: TrackState = TrackState.TRACKING
    score: float = 0.0
    visibility: float = 0.0
    flow_confidence: float = 1.0
    keyframe_index: int = 0
    keyframe_stamp: object = None
    reanchor_count: int = 0
    last_box: tuple[float, float, float, float] | None = None  # last reliable box
    last_reliable_step: int = 0  # SAM 2 step of the last trusted output
    unresolved: int = 0  # consecutive keyframes with unresolved drift
    drift_suspected: bool = False
    lost_reason: str = ''  # 'drift', 'occluded' or 'left_view' while LOST
    anchor: Anchor | None = None  # mask on the last trusted keyframe, motion since


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """Tight box [x0, y0, x1, y1) of a mask, or None when it is empty."""
    x, y, w, h = cv2.boundingRect(mask.view(np.uint8))
    if w == 0:
        return None
    return x, y, x + w, y + h


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
        self.segmenter = segmenter
        self.detector = detector
        self.flow = FlowPropagator(self.config.flow)
        self.scheduler = KeyframeScheduler(self.config.keyframes)
        self.drift = DriftMonitor(self.config.drift)
        self.stats = PipelineStats()
        self._tracks: dict[int, _Track] = {}
        self._frame: np.ndarray | None = None
        self._flow_frame: FlowFrame | None = None
        self._stamp: object = None
        self._frame_index = -1
        self._last_keyframe_index = -1
        self._sam_frame_index = -1  # frame the segmenter's current step is on
        self._detections: tuple[int, list[Detection]] | None = None  # (frame index, result)

    def update_config(self, config: PipelineConfig) -> None:
        """Switch to another configuration between frames (live parameter changes)."""
        config.validate()
        if config.flow != self.config.flow:
            self.flow = FlowPropagator(config.flow)
        self.config = config
        self.scheduler.config = config.keyframes
        self.drift.config = config.drift

    # ------------------------------------------------------------------ frames

    @property
    def object_ids(self) -> list[int]:
        """Ids of the tracked objects, ascending."""
        return sorted(self._tracks)

    def process(self, frame: np.ndarray, stamp: object = None) -> FrameResult:
        """Track every object on the next frame (HxWx3 uint8 RGB)."""
        validate_frame(frame)
        timings: dict[str, float] = {}
        events: list[str] = []
        start = time.perf_counter()
        flow_frame = self.flow.prepare(frame)
        timings['prepare'] = _ms(start)
        if self._flow_frame is not None and (
            self._flow_frame.width != flow_frame.width
            or self._flow_frame.height != flow_frame.height
        ):
            self._flow_frame = None  # a resolution change: nothing to propagate from
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

        decision = self._decide(index, propagations)
        self._frame, self._flow_frame, self._stamp, self._frame_index = (
            frame,
            flow_frame,
            stamp,
            index,
        )
        self.stats.frames += 1
        if decision[0]:
            self._keyframe(frame, stamp, index, propagations, timings, events)
        else:
            self._propagate(propagations, events)
        timings['total'] = _ms(start)
        return FrameResult(
            frame_index=index,
            stamp=stamp,
            is_keyframe=decision[0],
            keyframe_reasons=decision[1],
            objects=self.snapshot(),
            events=events,
            timings_ms=timings,
        )

    def snapshot(self) -> list[TrackedObject]:
        """Return the objects as of the latest frame, sorted by id."""
        return [self._public(self._tracks[obj_id]) for obj_id in sorted(self._tracks)]

    def _decide(self, index: int, propagations: dict[int, Propagation]) -> tuple[bool, tuple]:
        if not self._tracks and not self._auto_tracking():
            return False, (NO_OBJECTS,)
        since = -1 if self._last_keyframe_index < 0 else index - self._last_keyframe_index - 1
        confidences = [p.confidence for p in propagations.values()]
        signals = FrameSignals(
            frames_since_keyframe=since,
            drift_suspected=any(t.drift_suspected for t in self._tracks.values()),
            lost_objects=sum(t.state == TrackState.LOST for t in self._tracks.values()),
            min_flow_confidence=min(confidences) if confidences else None,
            max_motion_px=max((p.motion_px for p in propagations.values()), default=0.0),
        )
        decision = self.scheduler.decide(signals)
        return decision.is_keyframe, decision.reasons

    def _auto_tracking(self) -> bool:
        return bool(self.config.auto_track_classes) and self.detector is not None

    def _propagate(self, propagations: dict, events: list[str]) -> None:
        for obj_id, track in self._tracks.items():
            if track.state == TrackState.LOST:
                continue
            propagation = propagations.get(obj_id)
            if propagation is None:
                continue
            self._follow(track, propagation)
            if not propagation.mask.any():
                self._lose(track, 'left_view', events)
            else:
                track.state = TrackState.PROPAGATED

    @staticmethod
    def _follow(track: _Track, propagation) -> None:
        """Take the flow's mask and confidence, and carry the keyframe anchor along."""
        track.mask = propagation.mask
        track.flow_confidence = propagation.confidence
        if track.anchor is not None and propagation.anchor_matrix is not None:
            track.anchor = Anchor(track.anchor.mask, propagation.anchor_matrix)

    # ------------------------------------------------------------------ keyframes

    def _keyframe(self, frame, stamp, index, propagations, timings, events) -> None:
        self.stats.keyframes += 1
        self._last_keyframe_index = index
        t = time.perf_counter()
        step = self.segmenter.step(frame) if self._tracks else None
        timings['sam2'] = _ms(t)
        if step is not None:
            self._sam_frame_index = index
        drifting: list[_Track] = []
        for obj_id, track in self._tracks.items():
            out = step.objects[obj_id]
            track.keyframe_index, track.keyframe_stamp = index, stamp
            track.score, track.visibility = out.score, out.visibility
            track.flow_confidence = 1.0
            self._judge(track, out, propagations.get(obj_id), drifting, events)

        lost = [t for t in self._tracks.values() if t.state == TrackState.LOST]
        need_detector = self.detector is not None and (
            (self.config.reanchoring and (drifting or lost)) or self._auto_tracking()
        )
        detections: list[Detection] = []
        if need_detector:
            t = time.perf_counter()
            detections = self._detect()
            timings['detector'] = _ms(t)
        # Detections that belong to objects tracked well cannot re-anchor another object.
        taken = {
            i
            for i, detection in enumerate(detections)
            for track in self._tracks.values()
            if track.state == TrackState.TRACKING
            and track.last_box is not None
            and box_iou(track.last_box, detection.box) >= 0.5
        }
        if self.config.reanchoring and self.detector is not None:
            self._reanchor(drifting + lost, detections, taken, events)
        for track in drifting:
            if track.drift_suspected:  # not resolved by a detection this keyframe
                track.unresolved += 1
                if track.unresolved >= self.config.lost_after_keyframes:
                    self._lose(track, 'drift', events)
        if self._auto_tracking() and detections:
            self._auto_track(detections, taken, events)

    def _judge(self, track: _Track, out: ObjectResult, flow, drifting, events) -> None:
        if track.state == TrackState.LOST:
            # SAM 2 may find an occluded or departed object again by itself; an object lost
            # to drift has polluted memory and waits for a detection.
            if track.lost_reason != 'drift':
                verdict = self.drift.assess(out.mask, out.score, out.visibility, None)
                if verdict.verdict == Verdict.CONSISTENT:
                    self._trust(track, out.mask)
                    self.stats.recoveries += 1
                    events.append(f'recovered {track.obj_id}')
            return
        verdict = self.drift.assess(out.mask, out.score, out.visibility, flow)
        if verdict.verdict == Verdict.CONSISTENT:
            self._trust(track, out.mask)
        elif verdict.verdict == Verdict.OCCLUDED:
            self._lose(track, 'occluded', events)
        else:
            if not track.drift_suspected:
                self.stats.drift_detections += 1
                events.append(f'drift {track.obj_id} ({", ".join(verdict.reasons)})')
            track.drift_suspected = True
            drifting.append(track)
            # Until resolved, publish the flow's mask when it is trusted, else SAM 2's.
            if flow is not None and flow.confidence >= self.config.drift.trusted_flow_confidence:
                self._follow(track, flow)
                track.state = TrackState.PROPAGATED
            else:
                track.mask, track.state = out.mask, TrackState.TRACKING

    def _trust(self, track: _Track, mask: np.ndarray, state=TrackState.TRACKING) -> None:
        track.mask, track.state = mask, state
        track.anchor = Anchor(mask, IDENTITY) if mask.any() else None
        track.drift_suspected, track.unresolved, track.lost_reason = False, 0, ''
        box = mask_box(mask)
        if box is not None:
            track.last_box = tuple(float(v) for v in box)
        track.last_reliable_step = self.segmenter.step_index

    def _lose(self, track: _Track, reason: str, events: list[str]) -> None:
        if track.state != TrackState.LOST:
            self.stats.lost_events += 1
            events.append(f'lost {track.obj_id} ({reason})')
        track.state, track.lost_reason = TrackState.LOST, reason
        track.mask = np.zeros_like(track.mask)
        track.anchor = None
        track.drift_suspected, track.unresolved = False, 0

    def _reanchor(self, tracks, detections, taken: set[int], events) -> None:
        targets = [
            MatchTarget(t.obj_id, t.last_box, t.class_id) for t in tracks if t.last_box is not None
        ]
        matches = match_detections(targets, detections, self.config.matching, taken)
        for obj_id, det_index in matches.items():
            track = self._tracks[obj_id]
            detection = detections[det_index]
            taken.add(det_index)
            result = self.segmenter.reanchor(
                obj_id, detection.box, drop_since_step=track.last_reliable_step + 1
            )
            was_lost = track.state == TrackState.LOST
            self._trust(track, result.mask, TrackState.REANCHORED)
            track.score, track.visibility = result.score, result.visibility
            track.reanchor_count += 1
            self.stats.reanchors += 1
            events.append(f'reanchored {obj_id}' + (' (was lost)' if was_lost else ''))
            if track.class_id < 0:
                track.class_id, track.class_name = detection.class_id, detection.class_name
                track.label = track.label or detection.class_name

    def _auto_track(self, detections: list[Detection], taken: set[int], events) -> None:
        boxes = [t.last_box for t in self._tracks.values() if t.last_box is not None]
        classes = set(self.config.auto_track_classes)
        for index in unclaimed(detections, boxes, 0.3, taken):
            detection = detections[index]
            if detection.class_name not in classes:
                continue
            if detection.score < self.config.auto_track_min_score:
                continue
            if len(self._tracks) >= self.config.max_objects:
                break
            if self._sam_frame_index != self._frame_index:
                self._sam_step_on_latest()
            result = self.segmenter.add_object(box=detection.box)
            track = self._new_track(result, detection.class_name, detection)
            taken.add(index)
            boxes.append(track.last_box or detection.box)
            self.stats.auto_added += 1
            events.append(f'added {track.obj_id} ({detection.class_name})')

    # ------------------------------------------------------------------ prompts

    def add_object(
        self, points=None, labels=None, box=None, mask=None, label: str = '', obj_id=None
    ) -> tuple[TrackedObject, ObjectResult]:
        """Start an object from a prompt on the latest frame; returns it and SAM 2's output."""
        self._require_frame()
        if len(self._tracks) >= self.config.max_objects:
            raise PromptError(
                f'already tracking max_objects={self.config.max_objects} objects; remove one first'
            )
        if self._sam_frame_index != self._frame_index:
            self._sam_step_on_latest()
        result = self.segmenter.add_object(points, labels, box, mask, obj_id=obj_id)
        detection = self._best_detection(result.mask) if self.detector is not None else None
        track = self._new_track(result, label, detection)
        return self._public(track), result

    def refine(
        self, obj_id: int, points=None, labels=None, box=None, mask=None, label: str = ''
    ) -> tuple[TrackedObject, ObjectResult]:
        """Correct an object with a prompt on the latest frame."""
        self._require_frame()
        track = self._tracks.get(obj_id)
        if track is None:
            raise UnknownObjectError(
                f'unknown object id {obj_id!r}; tracked ids: {self.object_ids or "none"}'
            )
        if self._sam_frame_index != self._frame_index:
            self._sam_step_on_latest()
        result = self.segmenter.refine(obj_id, points, labels, box, mask)
        self._trust(track, result.mask)
        track.score, track.visibility, track.flow_confidence = result.score, result.visibility, 1.0
        track.keyframe_index, track.keyframe_stamp = self._frame_index, self._stamp
        if label:
            track.label = label
        return self._public(track), result

    def remove(self, obj_id: int) -> None:
        """Stop tracking one object."""
        if obj_id not in self._tracks:
            raise UnknownObjectError(
                f'unknown object id {obj_id!r}; tracked ids: {self.object_ids or "none"}'
            )
        self.segmenter.remove(obj_id)
        del self._tracks[obj_id]

    def reset(self) -> int:
        """Remove every object; returns how many there were."""
        count = len(self._tracks)
        self.segmenter.reset()
        self._tracks.clear()
        self._sam_frame_index = -1
        self._last_keyframe_index = -1
        return count

    def _require_frame(self) -> None:
        if self._frame is None:
            raise FrameError('no frame yet: prompts apply to the latest processed frame')

    def _sam_step_on_latest(self) -> None:
        """Run SAM 2 on the latest frame so a prompt lands on the frame the user saw."""
        step = self.segmenter.step(self._frame)
        self._sam_frame_index = self._frame_index
        self._last_keyframe_index = self._frame_index
        for obj_id, track in self._tracks.items():
            out = step.objects[obj_id]
            track.score, track.visibility = out.score, out.visibility
            track.keyframe_index, track.keyframe_stamp = self._frame_index, self._stamp
            if track.state != TrackState.LOST or track.lost_reason != 'drift':
                if out.visibility >= self.config.drift.min_visibility and out.mask.any():
                    self._trust(track, out.mask)

    def _detect(self) -> list[Detection]:
        """Return the detections on the latest frame, computed once per frame."""
        if self._detections is None or self._detections[0] != self._frame_index:
            self._detections = (self._frame_index, self.detector.detect(self._frame))
        return self._detections[1]

    def _best_detection(self, mask: np.ndarray) -> Detection | None:
        box = mask_box(mask)
        if box is None:
            return None
        best, best_iou = None, self.config.label_min_iou
        for detection in self._detect():
            iou = box_iou(tuple(float(v) for v in box), detection.box)
            if iou >= best_iou:
                best, best_iou = detection, iou
        return best

    def _new_track(self, result: ObjectResult, label: str, detection: Detection | None) -> _Track:
        class_id, class_name = -1, ''
        if detection is not None:
            class_id, class_name = detection.class_id, detection.class_name
        if label and self.detector is not None:
            named = [k for k, v in self.detector.class_names.items() if v == label]
            if named:
                class_id, class_name = named[0], label
        track = _Track(
            obj_id=result.obj_id,
            label=label or class_name,
            class_id=class_id,
            class_name=class_name,
            mask=result.mask,
            score=result.score,
            visibility=result.visibility,
            keyframe_index=self._frame_index,
            keyframe_stamp=self._stamp,
        )
        self._tracks[result.obj_id] = track
        self._trust(track, result.mask)
        return track

    def _public(self, track: _Track) -> TrackedObject:
        box = mask_box(track.mask)
        centroid, area = None, 0
        if box is not None:
            x0, y0, x1, y1 = box
            moments = cv2.moments(track.mask[y0:y1, x0:x1].view(np.uint8), binaryImage=True)
            area = int(moments['m00'])
            centroid = (x0 + moments['m10'] / area, y0 + moments['m01'] / area)
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
            frames_since_keyframe=max(0, self._frame_index - track.keyframe_index),
            keyframe_stamp=track.keyframe_stamp,
            reanchor_count=track.reanchor_count,
        )


def _ms(start: float) -> float:
    return 1000.0 * (time.perf_counter() - start)
