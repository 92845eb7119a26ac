"""Judge SAM 2's mask on a keyframe: consistent, drifting, or the object really hidden.

On a keyframe each object has two masks for the same frame: SAM 2's, and the one optical
flow carried from the previous frame. When flow was confident and the two disagree (IoU
below `min_iou`, 0.6 by default), or SAM 2's own predicted IoU is low, SAM 2 has probably
latched onto something else: drift. When SAM 2 says the object is not visible, the flow
decides between occlusion and drift: if the flow region also lost its texture (features no
longer tracked) or left the image, the object is really hidden; if flow still tracks the
region confidently, SAM 2 lost it although it is there, which is drift too.
"""

from __future__ import annotations

from dataclasses import dataclass
import enum

import numpy as np

from sam2_ros.core.flow import Propagation


class Verdict(enum.Enum):
    """The drift monitor's judgement of one object on one keyframe."""

    CONSISTENT = 'consistent'
    DRIFT = 'drift'
    OCCLUDED = 'occluded'


@dataclass
class DriftConfig:
    """Thresholds; every field may change between frames (live parameters)."""

    min_iou: float = 0.6  # SAM 2 vs. flow mask IoU below this is drift (when flow is trusted)
    min_score: float = 0.5  # SAM 2 predicted IoU below this is drift
    min_visibility: float = 0.5  # SAM 2 object presence below this: not visible
    trusted_flow_confidence: float = 0.5  # flow above this is a reliable reference
    occlusion_containment: float = 0.9  # SAM mask this much inside the flow mask: occlusion

    def validate(self) -> None:
        """Raise ValueError naming the first invalid field."""
        names = (
            'min_iou',
            'min_score',
            'min_visibility',
            'trusted_flow_confidence',
            'occlusion_containment',
        )
        for name in names:
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f'{name} must be in [0, 1], got {value}')


@dataclass(frozen=True)
class DriftAssessment:
    """A verdict with the numbers behind it."""

    verdict: Verdict
    reasons: tuple[str, ...]
    iou_with_flow: float | None  # None when there was no flow reference


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boolean masks; 1.0 when both are empty."""
    union = np.count_nonzero(a | b)
    if union == 0:
        return 1.0
    return np.count_nonzero(a & b) / union


class DriftMonitor:
    """Compare SAM 2's keyframe masks with the flow prediction and SAM 2's own scores."""

    def __init__(self, config: DriftConfig | None = None) -> None:
        """Use `config` (validated), or the defaults."""
        self.config = config or DriftConfig()
        self.config.validate()

    def assess(
        self,
        sam_mask: np.ndarray,
        score: float,
        visibility: float,
        flow: Propagation | None,
        flow_overrules_visibility: bool = True,
    ) -> DriftAssessment:
        """Judge one object; `flow` is None when nothing was propagated to this frame.

        When SAM 2 says the object is not visible while a trusted flow still tracks it, that
        is drift (SAM 2 lost it) if `flow_overrules_visibility`, else occlusion: pass False
        when the flow's mask descends from a SAM 2 result several frames old (asynchronous
        keyframes), which cannot contradict SAM 2 on an object going behind something.
        """
        c = self.config
        trusted = flow is not None and flow.confidence >= c.trusted_flow_confidence
        iou = None if flow is None else mask_iou(sam_mask, flow.mask)
        if visibility < c.min_visibility or not sam_mask.any():
            if trusted and flow.mask.any() and flow_overrules_visibility:
                return DriftAssessment(Verdict.DRIFT, ('not_visible_but_flow_tracks_it',), iou)
            return DriftAssessment(Verdict.OCCLUDED, ('not_visible',), iou)
        reasons = []
        if score < c.min_score:
            reasons.append('low_score')
        if trusted and iou is not None and iou < c.min_iou:
            inside = np.count_nonzero(sam_mask & flow.mask) / np.count_nonzero(sam_mask)
            if inside < c.occlusion_containment:
                reasons.append('low_iou_with_flow')
        if reasons:
            return DriftAssessment(Verdict.DRIFT, tuple(reasons), iou)
        return DriftAssessment(Verdict.CONSISTENT, (), iou)
