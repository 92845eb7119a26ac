"""Accuracy of tracked masks: region similarity J, boundary F, id switches, recovery time.

J is the intersection over union of a predicted and a true mask (DAVIS's region
similarity); F is DAVIS's boundary measure: the precision and recall of boundary pixels
matched within a tolerance of max(1, round(bound_th x image diagonal)) pixels, combined as
2PR / (P + R). A boundary pixel is a mask pixel with a 4-neighbour outside the mask; the
image border is not a boundary (the view ends there, the object does not), so an object
cut by the border is judged on the edges it really has.

Sequences: ground truth is a list of frames, each a mapping gt_id -> truth (an object with
`mask` and `visible_fraction`, such as `synthetic.ObjectTruth`, or a bare boolean mask);
predictions are a list of frames, each a mapping pred_id -> mask (or objects with a `mask`,
or anything with `objects`, such as a `StepResult` or a pipeline result).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
import math

import cv2
import numpy as np

from sam2_ros.core.drift import mask_iou


def _masks(pred, gt) -> tuple[np.ndarray, np.ndarray]:
    pred, gt = np.asarray(pred, dtype=bool), np.asarray(gt, dtype=bool)
    if pred.shape != gt.shape or pred.ndim != 2:
        raise ValueError(f'masks must be 2-D and of one shape, got {pred.shape} and {gt.shape}')
    return pred, gt


def region_similarity(pred: np.ndarray, gt: np.ndarray) -> float:
    """Return J: the IoU of two boolean masks (as the drift monitor measures it)."""
    return mask_iou(*_masks(pred, gt))


def boundary_tolerance(shape: tuple[int, ...], bound_th: float = 0.008) -> int:
    """Return the matching distance in pixels: max(1, round(bound_th x diagonal)).

    A `bound_th` of 1 or more is a distance in pixels already (as in DAVIS).
    """
    if not bound_th > 0:
        raise ValueError(f'bound_th must be positive, got {bound_th}')
    if bound_th >= 1:
        return int(math.floor(bound_th + 0.5))
    return max(1, int(math.floor(bound_th * math.hypot(shape[0], shape[1]) + 0.5)))


def boundary(mask: np.ndarray) -> np.ndarray:
    """Return the mask pixels with a 4-neighbour outside the mask (the image border is not)."""
    m = np.asarray(mask, dtype=bool).view(np.uint8)
    cross = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
    # OpenCV erodes with a border that never removes pixels: outside counts as inside.
    return (m > 0) & (cv2.erode(m, cross) == 0)


def _disk(radius: int) -> np.ndarray:
    y, x = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    return (x * x + y * y <= radius * radius).astype(np.uint8)


def boundary_f_measure(pred: np.ndarray, gt: np.ndarray, bound_th: float = 0.008) -> float:
    """Return F: boundary precision/recall within the tolerance (boundary_tolerance).

    1.0 when both masks are empty, 0.0 when only one is.
    """
    pred, gt = _masks(pred, gt)
    pred_any, gt_any = pred.any(), gt.any()
    if not pred_any and not gt_any:
        return 1.0
    if not pred_any or not gt_any:
        return 0.0
    tolerance = boundary_tolerance(gt.shape, bound_th)
    # Work on the masks' common bounding box, padded beyond the tolerance.
    union = (pred | gt).view(np.uint8)
    x, y, w, h = cv2.boundingRect(union)
    pad = tolerance + 2
    x0, y0 = max(0, x - pad), max(0, y - pad)
    x1, y1 = min(gt.shape[1], x + w + pad), min(gt.shape[0], y + h + pad)
    pred_b = boundary(pred[y0:y1, x0:x1])
    gt_b = boundary(gt[y0:y1, x0:x1])
    pred_n, gt_n = np.count_nonzero(pred_b), np.count_nonzero(gt_b)
    if pred_n == 0 and gt_n == 0:  # both masks fill the whole image
        return 1.0
    if pred_n == 0 or gt_n == 0:
        return 0.0
    disk = _disk(tolerance)
    gt_near = cv2.dilate(gt_b.view(np.uint8), disk) > 0
    pred_near = cv2.dilate(pred_b.view(np.uint8), disk) > 0
    precision = np.count_nonzero(pred_b & gt_near) / pred_n
    recall = np.count_nonzero(gt_b & pred_near) / gt_n
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


# ---------------------------------------------------------------------------------- sequences


def frame_masks(frame_predictions) -> dict[int, np.ndarray]:
    """Return {id: bool mask} from one frame of predictions in any accepted form.

    Accepts a mapping id -> mask or id -> object with `mask`, a list of objects with
    `obj_id` and `mask`, or an object with `objects` holding either (StepResult, pipeline
    results). None is a frame without predictions.
    """
    if frame_predictions is None:
        return {}
    if hasattr(frame_predictions, 'objects') and not isinstance(frame_predictions, Mapping):
        frame_predictions = frame_predictions.objects
    if isinstance(frame_predictions, Mapping):
        items = frame_predictions.items()
    else:
        items = ((item.obj_id, item) for item in frame_predictions)
    return {
        int(key): np.asarray(getattr(value, 'mask', value), dtype=bool) for key, value in items
    }


def _truth_entry(value) -> tuple[np.ndarray, float]:
    """(visible mask, visible fraction) of one ground-truth entry."""
    if isinstance(value, np.ndarray):
        mask = value.astype(bool, copy=False)
        return mask, 1.0 if mask.any() else 0.0
    return np.asarray(value.mask, dtype=bool), float(value.visible_fraction)


def _truth_frames(truth) -> list[Mapping]:
    return list(getattr(truth, 'truth', truth))  # a Sequence or a list of frames


def _best_match(gt_mask: np.ndarray, masks: dict[int, np.ndarray], iou_threshold: float):
    """Return the predicted id overlapping `gt_mask` most, if its IoU reaches the threshold."""
    best_id, best_iou = None, iou_threshold
    for pred_id, mask in sorted(masks.items()):
        iou = region_similarity(mask, gt_mask)
        if iou >= best_iou and (best_id is None or iou > best_iou):
            best_id, best_iou = pred_id, iou
    return best_id


@dataclass
class ObjectScores:
    """Scores of one ground-truth object over a sequence."""

    j: float  # mean J over the scored frames (nan when there are none)
    f: float  # mean F over the same frames
    frames_visible: int  # scored frames: visible fraction above the minimum
    frames_missed: int  # scored, but no predicted id overlaps it with IoU >= 0.5
    false_positive_frames: int  # not visible at all, yet its track has a mask
    id_switches: int  # changes of the best-overlapping predicted id on scored frames
    j_per_frame: list[float | None] = field(default_factory=list)  # None: not scored
    f_per_frame: list[float | None] = field(default_factory=list)
    pred_ids: tuple[int, ...] = ()  # the predicted ids assigned to it

    @property
    def j_and_f(self) -> float:
        """Mean of J and F."""
        return (self.j + self.f) / 2


@dataclass
class SequenceScores:
    """Scores of a whole sequence: means over the objects with scored frames."""

    objects: dict[int, ObjectScores]
    j: float
    f: float
    j_and_f: float
    id_switches: int
    false_positive_frames: int = 0
    assignment: dict[int, tuple[int, ...]] = field(default_factory=dict)


def match_ids(truth, predictions, iou_threshold: float = 0.5) -> dict[int, int]:
    """Assign predicted ids to ground-truth ids one to one, by frames of overlap.

    A (gt, pred) pair gets a vote on every frame where that predicted mask has IoU >=
    `iou_threshold` with the visible ground-truth mask; pairs are taken greedily by votes
    (ties by lower ids). Returns {gt_id: pred_id} for the pairs with at least one vote.
    """
    frames = _truth_frames(truth)
    if len(frames) != len(predictions):
        raise ValueError(f'{len(frames)} ground-truth frames but {len(predictions)} predictions')
    votes: dict[tuple[int, int], int] = {}
    for frame_truth, frame_pred in zip(frames, predictions, strict=True):
        masks = frame_masks(frame_pred)
        for gt_id, value in frame_truth.items():
            gt_mask, _ = _truth_entry(value)
            if not gt_mask.any():
                continue
            for pred_id, mask in masks.items():
                if region_similarity(mask, gt_mask) >= iou_threshold:
                    votes[gt_id, pred_id] = votes.get((gt_id, pred_id), 0) + 1
    assignment: dict[int, int] = {}
    used: set[int] = set()
    for (gt_id, pred_id), _ in sorted(votes.items(), key=lambda kv: (-kv[1], kv[0])):
        if gt_id not in assignment and pred_id not in used:
            assignment[gt_id] = pred_id
            used.add(pred_id)
    return dict(sorted(assignment.items()))


def id_switches(
    truth,
    predictions,
    iou_threshold: float = 0.5,
    min_visible_fraction: float = 0.0,
) -> dict[int, int]:
    """Count, per ground-truth object, changes of the predicted id that best overlaps it.

    On each frame where the object's visible fraction exceeds the minimum, the predicted id
    with the highest IoU (at least `iou_threshold`) is its match; a switch is a match that
    differs from the previous match. Frames without a match neither count nor reset.
    """
    frames = _truth_frames(truth)
    if len(frames) != len(predictions):
        raise ValueError(f'{len(frames)} ground-truth frames but {len(predictions)} predictions')
    last: dict[int, int] = {}
    switches: dict[int, int] = {}
    for frame_truth, frame_pred in zip(frames, predictions, strict=True):
        masks = frame_masks(frame_pred)
        for gt_id, value in frame_truth.items():
            switches.setdefault(gt_id, 0)
            gt_mask, fraction = _truth_entry(value)
            if not gt_mask.any() or fraction <= min_visible_fraction:
                continue
            match = _best_match(gt_mask, masks, iou_threshold)
            if match is None:
                continue
            if gt_id in last and last[gt_id] != match:
                switches[gt_id] += 1
            last[gt_id] = match
    return switches


def _normalise(assignment: Mapping) -> dict[int, tuple[int, ...]]:
    result = {}
    for gt_id, pred in assignment.items():
        ids = (pred,) if isinstance(pred, (int, np.integer)) else tuple(pred)
        result[int(gt_id)] = tuple(int(i) for i in ids)
    return result


def evaluate_sequence(
    truth,
    predictions,
    assignment: Mapping[int, int | Iterable[int]] | None = None,
    min_visible_fraction: float = 0.0,
    *,
    bound_th: float = 0.008,
    switch_iou: float = 0.5,
) -> SequenceScores:
    """Score per-frame predictions against ground truth.

    `assignment` maps each ground-truth id to the predicted id meant to follow it (or to
    several ids, e.g. an object re-added under a new id; their masks are united); None
    assigns by overlap (match_ids) and scores every ground-truth object. On frames where
    the object's visible fraction exceeds `min_visible_fraction`, J and F compare the
    assigned mask with the visible ground truth (an absent prediction is an empty mask);
    frames where it is visible but below the minimum are not scored; frames where it is not
    visible at all count as false positives if its track has a mask. Id switches are
    counted on the scored frames (see id_switches).
    """
    frames = _truth_frames(truth)
    if len(frames) != len(predictions):
        raise ValueError(f'{len(frames)} ground-truth frames but {len(predictions)} predictions')
    if assignment is None:
        matched = match_ids(frames, predictions, switch_iou)
        gt_ids = sorted({g for frame_truth in frames for g in frame_truth})
        assignment = {g: (matched[g],) if g in matched else () for g in gt_ids}
    assigned = _normalise(assignment)
    switches = id_switches(frames, predictions, switch_iou, min_visible_fraction)
    js = {g: [] for g in assigned}
    fs = {g: [] for g in assigned}
    missed = dict.fromkeys(assigned, 0)
    false_positive = dict.fromkeys(assigned, 0)
    for frame_truth, frame_pred in zip(frames, predictions, strict=True):
        masks = frame_masks(frame_pred)
        for gt_id, pred_ids in assigned.items():
            if gt_id not in frame_truth:
                raise KeyError(f'ground-truth id {gt_id} is missing from a frame of the truth')
            gt_mask, fraction = _truth_entry(frame_truth[gt_id])
            pred = np.zeros(gt_mask.shape, bool)
            for pred_id in pred_ids:
                if pred_id in masks:
                    pred |= masks[pred_id]
            if not gt_mask.any():
                false_positive[gt_id] += bool(pred.any())
                js[gt_id].append(None)
                fs[gt_id].append(None)
                continue
            if fraction <= min_visible_fraction:
                js[gt_id].append(None)
                fs[gt_id].append(None)
                continue
            js[gt_id].append(region_similarity(pred, gt_mask))
            fs[gt_id].append(boundary_f_measure(pred, gt_mask, bound_th))
            missed[gt_id] += _best_match(gt_mask, masks, switch_iou) is None
    objects = {}
    for gt_id, pred_ids in assigned.items():
        scored_j = [v for v in js[gt_id] if v is not None]
        scored_f = [v for v in fs[gt_id] if v is not None]
        objects[gt_id] = ObjectScores(
            j=float(np.mean(scored_j)) if scored_j else float('nan'),
            f=float(np.mean(scored_f)) if scored_f else float('nan'),
            frames_visible=len(scored_j),
            frames_missed=missed[gt_id],
            false_positive_frames=false_positive[gt_id],
            id_switches=switches.get(gt_id, 0),
            j_per_frame=js[gt_id],
            f_per_frame=fs[gt_id],
            pred_ids=pred_ids,
        )
    scored = [o for o in objects.values() if o.frames_visible]
    j = float(np.mean([o.j for o in scored])) if scored else float('nan')
    f = float(np.mean([o.f for o in scored])) if scored else float('nan')
    return SequenceScores(
        objects=objects,
        j=j,
        f=f,
        j_and_f=(j + f) / 2,
        id_switches=sum(o.id_switches for o in objects.values()),
        false_positive_frames=sum(o.false_positive_frames for o in objects.values()),
        assignment=assigned,
    )


def recovery_frames(
    j_per_frame: list[float | None], event_frame: int, threshold: float = 0.5, hold: int = 1
) -> int | None:
    """Frames from `event_frame` until J is at `threshold` or above for `hold` frames in a row.

    Returns the offset of the first frame of that run (0 if J never dropped), or None if it
    never happens. Frames where the object is not scored (None) break a run.
    """
    if hold < 1:
        raise ValueError(f'hold must be at least 1, got {hold}')
    if event_frame < 0:
        raise ValueError(f'event_frame must be >= 0, got {event_frame}')
    run = 0
    for offset, j in enumerate(j_per_frame[event_frame:]):
        run = run + 1 if j is not None and j >= threshold else 0
        if run >= hold:
            return offset - hold + 1
    return None
