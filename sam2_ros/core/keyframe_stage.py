"""What happens on a frame SAM 2 runs on: segment, judge drift, re-anchor, auto-track, prompt.

`KeyframeStage` owns the segmenter and the detector. It works on a `SamFrame`: one frame and
the objects as they stood on it (`Track` records, mutated in place). The pipeline hands it
either its live tracks (sync mode: SAM 2 runs inside the frame loop) or copies taken when the
keyframe started (asynchronous modes: SAM 2 runs on its own thread while the frame path goes
on); the pipeline then carries the result to the present frame and merges it. One thread at a
time uses a stage.

On a keyframe, SAM 2's mask of each object is checked against the flow prediction and SAM 2's
scores (`DriftMonitor`). A drifting object is re-prompted from the detection that matches its
last reliable box (`Segmenter.reanchor`, which drops the polluted memories); with no match for
`lost_after_keyframes` keyframes it becomes LOST, and lost objects are searched for on
keyframes until SAM 2 or the detector finds them again, under the same id.

A keyframe and a prompt are each one transaction: when SAM 2 runs out of memory anywhere in
one (the step, a re-anchoring, an auto-tracked object), the segmenter, the objects, the
counters and the events go back to how they were before it, and `Sam2OutOfMemoryError` says what
was being done. `memory` (a `MemoryGovernor`) holds the degradation the pipeline decided: while
it refuses new objects, prompts for new objects are refused and auto-tracking waits.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace
import time
from typing import TYPE_CHECKING

import cv2
import numpy as np

from sam2_ros.core.drift import DriftMonitor, Verdict
from sam2_ros.core.flow import IDENTITY, Anchor, Propagation
from sam2_ros.core.matching import MatchTarget, box_iou, match_detections, unclaimed
from sam2_ros.core.memory import (
    REMEDY,
    MemoryGovernor,
    Sam2OutOfMemoryError,
    is_out_of_memory,
    release_cached_memory,
)
from sam2_ros.core.prompts import PromptError
from sam2_ros.core.tracking_types import (
    Detection,
    Detector,
    ObjectResult,
    Segmenter,
    TrackState,
    UnknownObjectError,
)

if TYPE_CHECKING:
    from sam2_ros.core.pipeline import PipelineConfig, PipelineStats


@dataclass
class Track:
    """Everything the pipeline knows about one object on one frame."""

    obj_id: int
    label: str
    class_id: int
    class_name: str
    mask: np.ndarray
    state: TrackState = TrackState.TRACKING
    score: float = 0.0
    visibility: float = 0.0
    flow_confidence: float = 1.0
    keyframe_index: int = 0  # frame SAM 2 last ran on for this object
    keyframe_stamp: int | None = None  # its header stamp, ns
    reanchor_count: int = 0
    last_box: tuple[float, float, float, float] | None = None  # last reliable box
    last_reliable_step: int = 0  # SAM 2 step of the last trusted output
    unresolved: int = 0  # consecutive keyframes with unresolved drift
    drift_suspected: bool = False
    lost_reason: str = ''  # 'drift', 'occluded' or 'left_view' while LOST
    anchor: Anchor | None = None  # mask on the last trusted keyframe, motion since


class NewObjectRefusedError(PromptError):
    """A new object refused because SAM 2 is short of memory."""


# PipelineStats counters a keyframe may change (restored when it is abandoned).
_COUNTERS = ('reanchors', 'drift_detections', 'lost_events', 'recoveries', 'auto_added')


@dataclass
class SamFrame:
    """The frame SAM 2 runs on and the objects as they stood on it."""

    frame: np.ndarray  # (H, W, 3) uint8 RGB
    stamp: int | None  # header stamp, ns
    index: int  # the pipeline's frame index
    tracks: dict[int, Track]


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """Tight box [x0, y0, x1, y1) of a mask, or None when it is empty."""
    x, y, w, h = cv2.boundingRect(mask.view(np.uint8))
    if w == 0:
        return None
    return x, y, x + w, y + h


def follow(track: Track, propagation: Propagation) -> None:
    """Take the flow's mask and confidence, and carry the keyframe anchor along."""
    track.mask = propagation.mask
    track.flow_confidence = propagation.confidence
    if track.anchor is not None and propagation.anchor_matrix is not None:
        track.anchor = Anchor(track.anchor.mask, propagation.anchor_matrix)


class KeyframeStage:
    """SAM 2 and the detector on one frame: keyframes, prompts, re-anchoring."""

    def __init__(
        self,
        segmenter: Segmenter,
        detector: Detector | None,
        config: PipelineConfig,
        stats: PipelineStats,
    ) -> None:
        """Use `segmenter` and `detector` (optional) under `config`, counting into `stats`."""
        self.segmenter = segmenter
        self.detector = detector
        self.config = config
        self.drift = DriftMonitor(config.drift)
        self.stats = stats
        self.sam_frame_index = -1  # frame the segmenter's current step is on
        self._detections: tuple[int, list[Detection]] | None = None  # (frame index, result)
        self.memory = MemoryGovernor()  # changed by the pipeline's driving thread only

    def update_config(self, config: PipelineConfig) -> None:
        """Switch to another (validated) configuration."""
        self.config = config
        self.drift.config = config.drift

    def auto_tracking(self) -> bool:
        """Whether detections of configured classes start objects by themselves."""
        return bool(self.config.auto_track_classes) and self.detector is not None

    # ------------------------------------------------------------------ keyframes

    def keyframe(
        self,
        sf: SamFrame,
        propagations: dict[int, Propagation],
        timings: dict[str, float],
        events: list[str],
    ) -> None:
        """Run SAM 2 on `sf`, judge every object against its flow prediction, re-anchor.

        One transaction: raises Sam2OutOfMemoryError with everything as before the call.
        """
        with self.transaction(sf, f'the keyframe on frame {sf.index}', events):
            self._keyframe(sf, propagations, timings, events)

    def _keyframe(self, sf: SamFrame, propagations, timings, events) -> None:
        t = time.perf_counter()
        step = self.segmenter.step(sf.frame) if sf.tracks else None
        timings['sam2'] = _ms(t)
        if step is not None:
            self.sam_frame_index = sf.index
        drifting: list[Track] = []
        for obj_id, track in sf.tracks.items():
            out = step.objects[obj_id]
            track.keyframe_index, track.keyframe_stamp = sf.index, sf.stamp
            track.score, track.visibility = out.score, out.visibility
            track.flow_confidence = 1.0
            self._judge(track, out, propagations.get(obj_id), drifting, events)

        lost = [t for t in sf.tracks.values() if t.state == TrackState.LOST]
        need_detector = self.detector is not None and (
            (self.config.reanchoring and (drifting or lost)) or self.auto_tracking()
        )
        detections: list[Detection] = []
        if need_detector:
            t = time.perf_counter()
            detections = self._detect(sf)
            timings['detector'] = _ms(t)
        # Detections that belong to objects tracked well cannot re-anchor another object.
        taken = {
            i
            for i, detection in enumerate(detections)
            for track in sf.tracks.values()
            if track.state == TrackState.TRACKING
            and track.last_box is not None
            and box_iou(track.last_box, detection.box) >= 0.5
        }
        if self.config.reanchoring and self.detector is not None:
            self._reanchor(sf, drifting + lost, detections, taken, events)
        for track in drifting:
            if track.drift_suspected:  # not resolved by a detection this keyframe
                track.unresolved += 1
                if track.unresolved >= self.config.lost_after_keyframes:
                    self.lose(track, 'drift', events)
        if self.auto_tracking() and detections and not self.memory.refuse_new:
            self._auto_track(sf, detections, taken, events)

    @contextlib.contextmanager
    def transaction(self, sf: SamFrame, action: str, events: list[str]):
        """Make the block one transaction against out-of-memory; raise Sam2OutOfMemoryError.

        When SAM 2 runs out of memory inside the block, everything it did to the segmenter,
        `sf`'s objects, the counters and `events` is undone.

        The original error is let go before the allocator's cache is released (its
        traceback holds the failed step's tensors).
        """
        checkpoint = self.segmenter.checkpoint()
        tracks = {obj_id: replace(track) for obj_id, track in sf.tracks.items()}
        counters = {name: getattr(self.stats, name) for name in _COUNTERS}
        sam_frame_index, event_count = self.sam_frame_index, len(events)
        failure = None
        try:
            yield
        except Exception as error:  # noqa: BLE001 - only out-of-memory is handled here
            if not is_out_of_memory(error):
                raise
            frame = sf.frame.shape[1], sf.frame.shape[0]
            failure = Sam2OutOfMemoryError(action, tracks, frame, error, self.segmenter.describe())
        if failure is None:
            return
        self.segmenter.restore(checkpoint)
        for obj_id in [i for i in sf.tracks if i not in tracks]:
            del sf.tracks[obj_id]
        for obj_id, saved in tracks.items():
            live = sf.tracks.setdefault(obj_id, saved)
            vars(live).update(vars(saved))
        for name, value in counters.items():
            setattr(self.stats, name, value)
        self.sam_frame_index = sam_frame_index
        del events[event_count:]
        release_cached_memory()
        raise failure

    def _judge(self, track: Track, out: ObjectResult, flow, drifting, events) -> None:
        if track.state == TrackState.LOST:
            # SAM 2 may find an occluded or departed object again by itself; an object lost
            # to drift has polluted memory and waits for a detection.
            if track.lost_reason != 'drift':
                verdict = self.drift.assess(out.mask, out.score, out.visibility, None)
                if verdict.verdict == Verdict.CONSISTENT:
                    self.trust(track, out.mask)
                    self.stats.recoveries += 1
                    events.append(f'recovered {track.obj_id}')
            return
        fresh = self.config.mode == 'sync'  # else the flow's mask is as old as SAM 2's lag
        verdict = self.drift.assess(out.mask, out.score, out.visibility, flow, fresh)
        if verdict.verdict == Verdict.CONSISTENT:
            self.trust(track, out.mask)
        elif verdict.verdict == Verdict.OCCLUDED:
            self.lose(track, 'occluded', events)
        else:
            if not track.drift_suspected:
                self.stats.drift_detections += 1
                events.append(f'drift {track.obj_id} ({", ".join(verdict.reasons)})')
            track.drift_suspected = True
            drifting.append(track)
            # Until resolved, publish the flow's mask when it is trusted, else SAM 2's.
            if flow is not None and flow.confidence >= self.config.drift.trusted_flow_confidence:
                follow(track, flow)
                track.state = TrackState.PROPAGATED
            else:
                track.mask, track.state = out.mask, TrackState.TRACKING

    def trust(self, track: Track, mask: np.ndarray, state=TrackState.TRACKING) -> None:
        """Take `mask` as the object's reliable mask on this frame and anchor flow to it."""
        track.mask, track.state = mask, state
        track.anchor = Anchor(mask, IDENTITY) if mask.any() else None
        track.drift_suspected, track.unresolved, track.lost_reason = False, 0, ''
        box = mask_box(mask)
        if box is not None:
            track.last_box = tuple(float(v) for v in box)
        track.last_reliable_step = self.segmenter.step_index

    def lose(self, track: Track, reason: str, events: list[str]) -> None:
        """Mark an object LOST for `reason`; it is searched for on keyframes."""
        if track.state != TrackState.LOST:
            self.stats.lost_events += 1
            events.append(f'lost {track.obj_id} ({reason})')
        track.state, track.lost_reason = TrackState.LOST, reason
        track.mask = np.zeros_like(track.mask)
        track.anchor = None
        track.drift_suspected, track.unresolved = False, 0

    def _reanchor(self, sf: SamFrame, tracks, detections, taken: set[int], events) -> None:
        targets = [
            MatchTarget(t.obj_id, t.last_box, t.class_id) for t in tracks if t.last_box is not None
        ]
        matches = match_detections(targets, detections, self.config.matching, taken)
        for obj_id, det_index in matches.items():
            track = sf.tracks[obj_id]
            detection = detections[det_index]
            taken.add(det_index)
            result = self.segmenter.reanchor(
                obj_id, detection.box, drop_since_step=track.last_reliable_step + 1
            )
            was_lost = track.state == TrackState.LOST
            self.trust(track, result.mask, TrackState.REANCHORED)
            track.score, track.visibility = result.score, result.visibility
            track.reanchor_count += 1
            self.stats.reanchors += 1
            events.append(f'reanchored {obj_id}' + (' (was lost)' if was_lost else ''))
            if track.class_id < 0:
                track.class_id, track.class_name = detection.class_id, detection.class_name
                track.label = track.label or detection.class_name

    def _auto_track(self, sf: SamFrame, detections: list[Detection], taken: set[int], events):
        boxes = [t.last_box for t in sf.tracks.values() if t.last_box is not None]
        classes = set(self.config.auto_track_classes)
        for index in unclaimed(detections, boxes, 0.3, taken):
            detection = detections[index]
            if detection.class_name not in classes:
                continue
            if detection.score < self.config.auto_track_min_score:
                continue
            if len(sf.tracks) >= self.config.max_objects:
                break
            if self.sam_frame_index != sf.index:
                self._step_on(sf)
            result = self.segmenter.add_object(box=detection.box)
            track = self._new_track(sf, result, detection.class_name, detection)
            taken.add(index)
            boxes.append(track.last_box or detection.box)
            self.stats.auto_added += 1
            events.append(f'added {track.obj_id} ({detection.class_name})')

    # ------------------------------------------------------------------ prompts

    def add_object(
        self, sf: SamFrame, points=None, labels=None, box=None, mask=None, label='', obj_id=None
    ) -> tuple[Track, ObjectResult]:
        """Start an object from a prompt on `sf`; returns its track and SAM 2's output."""
        if len(sf.tracks) >= self.config.max_objects:
            raise PromptError(
                f'already tracking max_objects={self.config.max_objects} objects; remove one first'
            )
        if self.memory.refuse_new:
            raise NewObjectRefusedError(
                f'new objects are refused while SAM 2 is short of memory '
                f'({self.memory.episode_failures} out-of-memory steps; {self.memory.describe()}); '
                f'existing objects are still tracked. To fit: {REMEDY}'
            )
        with self.transaction(sf, f'a prompt for a new object on frame {sf.index}', []):
            if self.sam_frame_index != sf.index:
                self._step_on(sf)
            result = self.segmenter.add_object(points, labels, box, mask, obj_id=obj_id)
            detection = (
                self._best_detection(sf, result.mask) if self.detector is not None else None
            )
            return self._new_track(sf, result, label, detection), result

    def refine(
        self, sf: SamFrame, obj_id: int, points=None, labels=None, box=None, mask=None, label=''
    ) -> tuple[Track, ObjectResult]:
        """Correct an object with a prompt on `sf`."""
        track = sf.tracks.get(obj_id)
        if track is None:
            raise UnknownObjectError(
                f'unknown object id {obj_id!r}; tracked ids: {sorted(sf.tracks) or "none"}'
            )
        with self.transaction(sf, f'a prompt refining object {obj_id} on frame {sf.index}', []):
            if self.sam_frame_index != sf.index:
                self._step_on(sf)
            result = self.segmenter.refine(obj_id, points, labels, box, mask)
        self.trust(track, result.mask)
        track.score, track.visibility, track.flow_confidence = result.score, result.visibility, 1.0
        track.keyframe_index, track.keyframe_stamp = sf.index, sf.stamp
        if label:
            track.label = label
        return track, result

    def remove(self, obj_id: int) -> None:
        """Forget one object in the segmenter."""
        self.segmenter.remove(obj_id)

    def reset(self) -> None:
        """Forget every object in the segmenter."""
        self.segmenter.reset()
        self.sam_frame_index = -1

    def _step_on(self, sf: SamFrame) -> None:
        """Run SAM 2 on `sf` so a prompt lands on the frame the user saw."""
        step = self.segmenter.step(sf.frame)
        self.sam_frame_index = sf.index
        for obj_id, track in sf.tracks.items():
            out = step.objects[obj_id]
            track.score, track.visibility = out.score, out.visibility
            track.keyframe_index, track.keyframe_stamp = sf.index, sf.stamp
            if track.state != TrackState.LOST or track.lost_reason != 'drift':
                if out.visibility >= self.config.drift.min_visibility and out.mask.any():
                    self.trust(track, out.mask)

    def _detect(self, sf: SamFrame) -> list[Detection]:
        """Return the detections on `sf`, computed once per frame."""
        if self._detections is None or self._detections[0] != sf.index:
            self._detections = (sf.index, self.detector.detect(sf.frame))
        return self._detections[1]

    def _best_detection(self, sf: SamFrame, mask: np.ndarray) -> Detection | None:
        box = mask_box(mask)
        if box is None:
            return None
        best, best_iou = None, self.config.label_min_iou
        for detection in self._detect(sf):
            iou = box_iou(tuple(float(v) for v in box), detection.box)
            if iou >= best_iou:
                best, best_iou = detection, iou
        return best

    def _new_track(
        self, sf: SamFrame, result: ObjectResult, label: str, detection: Detection | None
    ) -> Track:
        class_id, class_name = -1, ''
        if detection is not None:
            class_id, class_name = detection.class_id, detection.class_name
        if label and self.detector is not None:
            named = [k for k, v in self.detector.class_names.items() if v == label]
            if named:
                class_id, class_name = named[0], label
        track = Track(
            obj_id=result.obj_id,
            label=label or class_name,
            class_id=class_id,
            class_name=class_name,
            mask=result.mask,
            score=result.score,
            visibility=result.visibility,
            keyframe_index=sf.index,
            keyframe_stamp=sf.stamp,
        )
        sf.tracks[result.obj_id] = track
        self.trust(track, result.mask)
        return track


def _ms(start: float) -> float:
    return 1000.0 * (time.perf_counter() - start)
