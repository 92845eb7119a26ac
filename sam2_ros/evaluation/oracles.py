"""Oracle doubles of the segmenter and the detector, for measuring the parts around SAM 2.

`OracleSegmenter` has the `Segmenter` interface and the semantics of the streaming tracker
(ids, prompt validation, errors, step counter, reset) and answers with the ground truth of
a semi-synthetic sequence, except where drift is injected: from a given frame on, an
object's mask jumps to the background or to another object and stays wrong until the
object is re-anchored (or refined). `OracleDetector` returns ground-truth boxes with
optional noise, misses and false positives, and can be blinded to one object for a while.

Both recognise the sequence's frames by content (a hash of the pixels), so they accept the
sequence's arrays or equal copies, in any order. They measure propagation, keyframing and
drift handling; they never stand in for the real models in end-to-end tests.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
import hashlib
import math
from typing import NamedTuple

import cv2
import numpy as np

from sam2_ros.core.matching import box_iou
from sam2_ros.core.prompts import FrameError, Prompt, PromptError, make_prompt, validate_frame
from sam2_ros.core.tracking_types import Detection, ObjectResult, StepResult, UnknownObjectError
from sam2_ros.evaluation.synthetic import ObjectTruth, Sequence

DRIFT_KINDS = ('background', 'other_object')
_LOGIT = 12.0  # object score logit of a clearly visible (+) or absent (-) object


class _FrameIndex:
    """Find which frame of a sequence an array is, by content (hashes computed lazily)."""

    def __init__(self, sequence: Sequence) -> None:
        self._sequence = sequence
        self._by_hash: dict[bytes, list[int]] | None = None
        self._by_identity = {id(f): i for i, f in enumerate(sequence.frames)}

    @staticmethod
    def _digest(frame: np.ndarray) -> bytes:
        key = hashlib.blake2b(digest_size=16)
        key.update(str((frame.shape, frame.dtype.str)).encode())
        key.update(np.ascontiguousarray(frame).data)
        return key.digest()

    def lookup(self, frame: np.ndarray, previous: int = -1) -> int:
        """Return the frame's index; among equal frames, the first one after `previous`."""
        index = self._by_identity.get(id(frame))
        if index is not None and self._sequence.frames[index] is frame:
            return index
        if self._by_hash is None:
            self._by_hash = {}
            for i, f in enumerate(self._sequence.frames):
                self._by_hash.setdefault(self._digest(f), []).append(i)
        indices = self._by_hash.get(self._digest(frame))
        if indices is None:
            raise FrameError('frame is not part of the oracle sequence (no frame has its pixels)')
        return next((i for i in indices if i > previous), indices[0])


class OracleCall(NamedTuple):
    """One successful call of an oracle's public method."""

    method: str
    frame_index: int  # sequence index of the current frame (-1 before the first)
    obj_id: int | None


@dataclass(frozen=True)
class DriftEvent:
    """From `frame_index` on, an object following `gt_id` gets a wrong mask.

    It shows on the first step onto a frame at or after `frame_index` (a keyframed
    pipeline may skip that frame) and applies to every object then following `gt_id`.
    'background': the mask jumps to a patch of background of the object's shape and size
    (the nearest place clear of every object) and stays there. 'other_object': the mask
    follows another ground-truth object (`other_gt_id`, or the nearest one). Either lasts
    until the object is re-anchored or refined.
    """

    frame_index: int
    gt_id: int
    kind: str = 'background'  # one of DRIFT_KINDS
    score: float = 0.9  # predicted IoU while drifted: SAM 2 is often confident then
    other_gt_id: int | None = None  # for 'other_object'; None picks the nearest


@dataclass
class _Oracle:
    gt_id: int | None  # the ground-truth object followed, None: nothing
    drift: DriftEvent | None = None
    drift_mask: np.ndarray | None = None  # 'background': the fixed wrong mask
    drift_gt_id: int | None = None  # 'other_object': the object followed instead


def _centre(box) -> tuple[float, float]:
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


class OracleSegmenter:
    """Ground truth behind the streaming tracker's interface, with injectable drift.

    Prompts select a ground-truth object: a mask selects the one it overlaps most (IoU); a
    box the one whose visible box it overlaps most (IoU at least `match_iou`); points the
    one whose visible mask holds the most foreground points (background points inside
    count against it); with a box and points both add up. A prompt that selects nothing
    tracks nothing (empty masks). Outputs: the object's visible mask with `score` and
    visibility ~1, or an empty mask with score 0 and visibility ~0 when it is not visible
    (or below `min_visible_fraction`); `logits` is None and there are no candidates.
    """

    def __init__(
        self,
        sequence: Sequence,
        drift_events=(),
        score: float = 0.95,
        match_iou: float = 0.1,
        min_visible_fraction: float = 0.0,
    ) -> None:
        """Answer from `sequence`; inject `drift_events` (DriftEvent) when their frames come."""
        gt_ids = set(sequence.gt_ids) if sequence.truth else set()
        for event in drift_events:
            if event.kind not in DRIFT_KINDS:
                raise ValueError(f"unknown drift kind '{event.kind}'; use one of {DRIFT_KINDS}")
            if event.gt_id not in gt_ids:
                raise ValueError(f'drift event for unknown ground-truth id {event.gt_id}')
            if event.kind == 'other_object':
                others = gt_ids - {event.gt_id}
                if event.other_gt_id is not None and event.other_gt_id not in others:
                    raise ValueError(f'other_gt_id {event.other_gt_id} is not another object')
                if not others:
                    raise ValueError("'other_object' drift needs a second object")
        self.sequence = sequence
        self.drift_events = tuple(drift_events)
        self.score = score
        self.match_iou = match_iou
        self.min_visible_fraction = min_visible_fraction
        self.calls: list[OracleCall] = []
        self._frames = _FrameIndex(sequence)
        self._objects: dict[int, _Oracle] = {}
        self._applied: set[int] = set()  # indices into drift_events
        self._step = -1
        self._index = -1
        self._next_id = 1
        self.max_group_size: int | None = None  # no batches here; kept as the tracker does

    # ------------------------------------------------------------------ Segmenter interface

    @property
    def step_index(self) -> int:
        """Steps taken minus one (-1 before the first frame), like the tracker's counter."""
        return self._step

    @property
    def object_ids(self) -> list[int]:
        """Ids of the tracked objects, ascending."""
        return sorted(self._objects)

    @property
    def frame_size(self) -> tuple[int, int] | None:
        """(width, height) of the current frame, or None before the first frame."""
        if self._index < 0:
            return None
        frame = self.sequence.frames[self._index]
        return frame.shape[1], frame.shape[0]

    def describe(self) -> str:
        """Return what segments, for logs."""
        return 'oracle segmenter (ground truth)'

    @property
    def frame_index(self) -> int:
        """Sequence index of the current frame (-1 before the first)."""
        return self._index

    def step(self, frame: np.ndarray) -> StepResult:
        """Segment every object on the next frame (a frame of the sequence)."""
        validate_frame(frame)
        index = self._frames.lookup(frame, self._index)
        self._step, self._index = self._step + 1, index
        for k, event in enumerate(self.drift_events):
            if k not in self._applied and event.frame_index <= index:
                self._applied.add(k)
                for obj in self._objects.values():
                    if obj.gt_id == event.gt_id and obj.drift is None:
                        self._start_drift(obj, event)
        self.calls.append(OracleCall('step', index, None))
        return StepResult(self._step, {i: self._result(i, False) for i in self.object_ids})

    def add_object(
        self, points=None, labels=None, box=None, mask=None, obj_id: int | None = None
    ) -> ObjectResult:
        """Start an object on the ground-truth object the prompt selects."""
        self._require_frame()
        if obj_id is None:
            obj_id = self._next_id
        elif isinstance(obj_id, bool) or not isinstance(obj_id, int) or obj_id < 1:
            raise PromptError(f'object id must be a positive integer, got {obj_id!r}')
        elif obj_id in self._objects:
            raise PromptError(f'object {obj_id} already exists; refine it instead')
        prompt = make_prompt(*self.frame_size, points, labels, box, mask)
        self._objects[obj_id] = _Oracle(self._select(prompt))
        self._next_id = max(self._next_id, obj_id + 1)
        self.calls.append(OracleCall('add_object', self._index, obj_id))
        return self._result(obj_id, True)

    def refine(
        self, obj_id: int, points=None, labels=None, box=None, mask=None, clear_old=False
    ) -> ObjectResult:
        """Correct an object: it follows what the prompt selects, if anything; ends drift."""
        self._require_frame()
        obj = self._require_object(obj_id)
        prompt = make_prompt(*self.frame_size, points, labels, box, mask)
        target = self._select(prompt)
        if target is not None:
            obj.gt_id = target
        self._end_drift(obj)
        self.calls.append(OracleCall('refine', self._index, obj_id))
        return self._result(obj_id, True)

    def reanchor(self, obj_id: int, box, drop_since_step: int | None = None) -> ObjectResult:
        """Re-prompt from a box: follow what the box selects (nothing if none); ends drift."""
        self._require_frame()
        obj = self._require_object(obj_id)
        prompt = make_prompt(*self.frame_size, box=box)
        since = self._step if drop_since_step is None else int(drop_since_step)
        if since > self._step:
            raise PromptError(f'drop_since_step {since} is after the current step {self._step}')
        obj.gt_id = self._select(prompt)
        self._end_drift(obj)
        self.calls.append(OracleCall('reanchor', self._index, obj_id))
        return self._result(obj_id, True)

    def remove(self, obj_id: int) -> None:
        """Stop tracking one object."""
        self._require_object(obj_id)
        del self._objects[obj_id]
        self.calls.append(OracleCall('remove', self._index, obj_id))

    def reset(self) -> None:
        """Forget every object, the current frame and the step counter; re-arm drift events.

        The call record is kept (it is a measurement, not state).
        """
        self._objects.clear()
        self._applied.clear()
        self.calls.append(OracleCall('reset', self._index, None))
        self._step, self._index, self._next_id = -1, -1, 1

    def checkpoint(self) -> object:
        """Return the state now, for `restore` (the call record is not state)."""
        objects = {obj_id: replace(obj) for obj_id, obj in self._objects.items()}
        return objects, set(self._applied), self._step, self._index, self._next_id

    def restore(self, checkpoint: object) -> None:
        """Go back to the state of `checkpoint`."""
        objects, applied, self._step, self._index, self._next_id = checkpoint
        self._objects, self._applied = dict(objects), set(applied)

    # ------------------------------------------------------------------ measurement helpers

    def count(self, method: str) -> int:
        """Return how many times `method` was called successfully."""
        return sum(call.method == method for call in self.calls)

    def target(self, obj_id: int) -> int | None:
        """Return the ground-truth id an object follows (None: nothing), ignoring drift."""
        return self._require_object(obj_id).gt_id

    def drifted(self, obj_id: int) -> bool:
        """Return True while an injected drift affects the object."""
        return self._require_object(obj_id).drift is not None

    # ------------------------------------------------------------------ internals

    def _require_frame(self) -> None:
        if self._index < 0:
            raise FrameError('no frame yet: call step(frame) before prompting')

    def _require_object(self, obj_id) -> _Oracle:
        obj = self._objects.get(obj_id)
        if obj is None:
            raise UnknownObjectError(
                f'unknown object id {obj_id!r}; tracked ids: {self.object_ids or "none"}'
            )
        return obj

    def _truth(self) -> dict[int, ObjectTruth]:
        return self.sequence.truth[self._index]

    def _select(self, prompt: Prompt) -> int | None:
        """Return the ground-truth object a prompt selects on the current frame, if any."""
        truth = self._truth()
        if prompt.mask is not None:
            ious = {
                g: np.count_nonzero(t.mask & prompt.mask) / np.count_nonzero(t.mask | prompt.mask)
                for g, t in truth.items()
            }
            best = max(ious, key=lambda g: (ious[g], -g), default=None)
            return best if best is not None and ious[best] > 0 else None
        width, height = self.frame_size
        scores: dict[int, float] = {}
        for gt_id, t in truth.items():
            if t.box is None:
                continue
            score, evidence = 0.0, False
            if prompt.box is not None:
                iou = box_iou(tuple(float(v) for v in prompt.box), t.box)
                if iou >= self.match_iou:
                    score, evidence = score + iou, True
            for (x, y), label in zip(prompt.points, prompt.labels, strict=True):
                col, row = min(int(x), width - 1), min(int(y), height - 1)
                if t.mask[row, col]:
                    score += 1.0 if label == 1 else -1.0
                    evidence = evidence or label == 1
            if evidence and score > 0:
                scores[gt_id] = score
        return max(scores, key=lambda g: (scores[g], -g), default=None)

    def _start_drift(self, obj: _Oracle, event: DriftEvent) -> None:
        obj.drift = event
        truth = self._truth()
        if event.kind == 'other_object':
            obj.drift_gt_id = event.other_gt_id or self._nearest_other(event.gt_id, truth)
        else:
            obj.drift_mask = self._background_patch(truth[event.gt_id], truth)

    @staticmethod
    def _end_drift(obj: _Oracle) -> None:
        obj.drift, obj.drift_mask, obj.drift_gt_id = None, None, None

    @staticmethod
    def _nearest_other(gt_id: int, truth: dict[int, ObjectTruth]) -> int:
        """Return the other object nearest to `gt_id` (visible ones first), by box centres."""
        own = truth[gt_id].box or truth[gt_id].amodal_box
        cx, cy = _centre(own) if own is not None else (0.0, 0.0)

        def key(g: int):
            t = truth[g]
            box = t.box or t.amodal_box
            distance = math.hypot(*np.subtract(_centre(box), (cx, cy))) if box else math.inf
            return (t.box is None, distance, g)

        return min((g for g in truth if g != gt_id), key=key)

    def _background_patch(self, own: ObjectTruth, truth: dict[int, ObjectTruth]) -> np.ndarray:
        """Move the object's shape to the nearest spot clear of every object (by its box)."""
        width, height = self.frame_size
        if own.box is not None:
            x0, y0, x1, y1 = own.box
            template = own.mask[y0:y1, x0:x1]
        else:  # not visible: an ellipse of its whole size, or of a sixth of the frame
            box = own.amodal_box or (0, 0, width // 6, height // 6)
            w = max(4, min(box[2] - box[0], width // 2))
            h = max(4, min(box[3] - box[1], height // 2))
            x0, y0 = (width - w) // 2, (height - h) // 2
            template = np.zeros((h, w), np.uint8)
            cv2.ellipse(template, (w // 2, h // 2), (w // 2, h // 2), 0, 0, 360, 1, -1)
            template = template.astype(bool)
        h, w = template.shape
        occupied = np.zeros((height, width), np.uint8)
        for t in truth.values():
            occupied |= t.mask.view(np.uint8)
        margin = max(2, min(w, h) // 4)
        integral = cv2.integral(occupied)
        # Candidate top-left corners on a grid; a window is the box plus the margin.
        stride = max(2, min(w, h) // 4)
        xs = np.arange(0, width - w + 1, stride)
        ys = np.arange(0, height - h + 1, stride)
        gx, gy = np.meshgrid(xs, ys)
        ax0, ay0 = np.clip(gx - margin, 0, width), np.clip(gy - margin, 0, height)
        ax1, ay1 = np.clip(gx + w + margin, 0, width), np.clip(gy + h + margin, 0, height)
        inside = integral[ay1, ax1] - integral[ay0, ax1] - integral[ay1, ax0] + integral[ay0, ax0]
        distance = np.hypot(gx - x0, gy - y0)
        order = np.lexsort((distance.ravel(), inside.ravel()))  # clear first, then nearest
        best = order[0]
        px, py = int(gx.ravel()[best]), int(gy.ravel()[best])
        mask = np.zeros((height, width), bool)
        mask[py : py + h, px : px + w] = template
        return mask

    def _result(self, obj_id: int, is_conditioning: bool) -> ObjectResult:
        obj = self._objects[obj_id]
        truth = self._truth()
        score = self.score
        if obj.drift is not None and obj.drift_mask is not None:
            mask, visible, score = obj.drift_mask.copy(), True, obj.drift.score
        else:
            followed = obj.drift_gt_id if obj.drift is not None else obj.gt_id
            t = truth.get(followed) if followed is not None else None
            visible = (
                t is not None
                and t.box is not None
                and t.visible_fraction > self.min_visible_fraction
            )
            mask = t.mask.copy() if visible else np.zeros(self.frame_size[::-1], bool)
            if obj.drift is not None:
                score = obj.drift.score
        logit = _LOGIT if visible else -_LOGIT
        return ObjectResult(
            obj_id=obj_id,
            mask=mask,
            score=score if visible else 0.0,
            visibility=1.0 / (1.0 + math.exp(-logit)),
            object_score_logit=logit,
            is_conditioning=is_conditioning,
            logits=None,
        )


class OracleDetector:
    """Ground-truth boxes as detections, with noise, misses and false positives.

    On each frame, every object whose visible fraction is at least `min_visible_fraction`
    (and that is not blinded) is detected with probability 1 - `miss_rate`, at its visible
    box plus Gaussian noise of `box_noise_px` per coordinate, with score `score`; a Poisson
    number (mean `false_positives_per_frame`) of random boxes of random classes is added.
    The randomness is fixed per (seed, frame, object), so a frame always gives the same
    detections and blinding one object does not change the others.
    """

    def __init__(
        self,
        sequence: Sequence,
        miss_rate: float = 0.0,
        box_noise_px: float = 0.0,
        false_positives_per_frame: float = 0.0,
        seed: int = 0,
        min_visible_fraction: float = 0.3,
        score: float = 0.9,
        false_positive_score: float = 0.6,
    ) -> None:
        """Detect from `sequence`'s ground truth."""
        if not 0.0 <= miss_rate <= 1.0:
            raise ValueError(f'miss_rate must be in [0, 1], got {miss_rate}')
        if box_noise_px < 0 or false_positives_per_frame < 0:
            raise ValueError('box_noise_px and false_positives_per_frame must be >= 0')
        self.sequence = sequence
        self.miss_rate = miss_rate
        self.box_noise_px = box_noise_px
        self.false_positives_per_frame = false_positives_per_frame
        self.seed = seed
        self.min_visible_fraction = min_visible_fraction
        self.score = score
        self.false_positive_score = false_positive_score
        self.calls: list[int] = []  # sequence index of the frame of each detect() call
        self._frames = _FrameIndex(sequence)
        self._blind: list[tuple[int, int, int]] = []
        self._last = -1

    @property
    def class_names(self) -> dict[int, str]:
        """Class names by class id."""
        return dict(self.sequence.class_names)

    def blind(self, gt_id: int, start: int, end: int) -> None:
        """Never detect `gt_id` on frames start..end (both included)."""
        if end < start:
            raise ValueError(f'blind range {start}..{end} is empty')
        self._blind.append((gt_id, start, end))

    def detect(self, frame: np.ndarray) -> list[Detection]:
        """Return the detections on a frame of the sequence."""
        return [detection for detection, _ in self.detect_with_truth(frame)]

    def detect_with_truth(self, frame: np.ndarray) -> list[tuple[Detection, int | None]]:
        """Return (detection, ground-truth id or None for a false positive) pairs."""
        validate_frame(frame)
        index = self._frames.lookup(frame, self._last)
        self._last = index
        self.calls.append(index)
        height, width = frame.shape[:2]
        found: list[tuple[Detection, int | None]] = []
        for gt_id, t in self.sequence.truth[index].items():
            if t.box is None or t.visible_fraction < self.min_visible_fraction:
                continue
            if any(g == gt_id and s <= index <= e for g, s, e in self._blind):
                continue
            rng = np.random.default_rng((self.seed, index, gt_id))
            if rng.random() < self.miss_rate:
                continue
            x0, y0, x1, y1 = np.asarray(t.box, float) + rng.normal(0.0, 1.0, 4) * (
                self.box_noise_px
            )
            x0, y0 = float(np.clip(x0, 0, width - 1)), float(np.clip(y0, 0, height - 1))
            box = (x0, y0, float(np.clip(x1, x0 + 1, width)), float(np.clip(y1, y0 + 1, height)))
            found.append((Detection(box, self.score, t.class_id, t.class_name), gt_id))
        rng = np.random.default_rng((self.seed, index, 0))
        classes = sorted(self.sequence.class_names)
        for _ in range(rng.poisson(self.false_positives_per_frame)):
            w = rng.uniform(min(20, width / 2), max(21, width / 4))
            h = rng.uniform(min(20, height / 2), max(21, height / 4))
            w, h = min(w, width - 1), min(h, height - 1)
            x, y = rng.uniform(0, width - w), rng.uniform(0, height - h)
            class_id = int(classes[rng.integers(0, len(classes))])
            box = (float(x), float(y), float(x + w), float(y + h))
            name = self.sequence.class_names[class_id]
            found.append((Detection(box, self.false_positive_score, class_id, name), None))
        return found
