"""Match detections to tracked objects for re-anchoring and auto-tracking.

A detection may re-anchor an object when its class agrees (if the object's class is known)
and it is close to the object's last reliable box (box IoU, or centre distance relative to
the box size). Pairs are taken greedily from the best score, and no detection serves two
objects.
"""

from __future__ import annotations

from dataclasses import dataclass
import math

from sam2_ros.core.tracking_types import Detection

Box = tuple[float, float, float, float]


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two [x0, y0, x1, y1] boxes."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def centre_distance(a: Box, b: Box) -> float:
    """Distance between box centres divided by the diagonal of `a` (scale-free)."""
    ax, ay = (a[0] + a[2]) / 2, (a[1] + a[3]) / 2
    bx, by = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
    diagonal = math.hypot(a[2] - a[0], a[3] - a[1]) or 1.0
    return math.hypot(ax - bx, ay - by) / diagonal


@dataclass
class MatchConfig:
    """Gates of the matcher; may change between frames."""

    min_iou: float = 0.1  # a candidate must overlap the last box by this much, or
    max_centre_distance: float = 1.5  # have its centre this close (in last-box diagonals)
    min_score: float = 0.25  # detections below this confidence are ignored

    def validate(self) -> None:
        """Raise ValueError naming the first invalid field."""
        if not 0.0 <= self.min_iou <= 1.0:
            raise ValueError(f'min_iou must be in [0, 1], got {self.min_iou}')
        if self.max_centre_distance <= 0:
            raise ValueError(f'max_centre_distance must be > 0, got {self.max_centre_distance}')
        if not 0.0 <= self.min_score <= 1.0:
            raise ValueError(f'min_score must be in [0, 1], got {self.min_score}')


@dataclass(frozen=True)
class MatchTarget:
    """An object looking for a detection."""

    obj_id: int
    last_box: Box  # last reliable box of the object
    class_id: int  # -1 when unknown: any class may match


def match_detections(
    targets: list[MatchTarget],
    detections: list[Detection],
    config: MatchConfig,
    taken: set[int] | None = None,
) -> dict[int, int]:
    """Return {obj_id: detection index}; indices in `taken` are already claimed."""
    taken = set() if taken is None else set(taken)
    candidates = []
    for target in targets:
        for index, detection in enumerate(detections):
            if index in taken or detection.score < config.min_score:
                continue
            if target.class_id >= 0 and detection.class_id != target.class_id:
                continue
            iou = box_iou(target.last_box, detection.box)
            distance = centre_distance(target.last_box, detection.box)
            if iou < config.min_iou and distance > config.max_centre_distance:
                continue
            # Prefer overlap, then closeness, then confidence.
            cost = (1.0 - iou) + 0.5 * min(distance, 2.0) - 0.1 * detection.score
            candidates.append((cost, target.obj_id, index))
    matches: dict[int, int] = {}
    for _, obj_id, index in sorted(candidates):
        if obj_id in matches or index in taken:
            continue
        matches[obj_id] = index
        taken.add(index)
    return matches


def unclaimed(
    detections: list[Detection], boxes: list[Box], min_iou: float, taken: set[int]
) -> list[int]:
    """Return detections (indices) overlapping none of `boxes` by `min_iou`, not taken."""
    return [
        index
        for index, detection in enumerate(detections)
        if index not in taken and all(box_iou(detection.box, box) < min_iou for box in boxes)
    ]
