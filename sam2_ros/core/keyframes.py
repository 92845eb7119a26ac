"""Decide, frame by frame, whether SAM 2 runs (a keyframe) or optical flow carries the masks.

A keyframe happens every `interval` frames, and early when something needs SAM 2 now: a
propagation the flow itself does not trust, motion too large for flow, a drift suspicion
waiting for confirmation, or a lost object being searched for. (A prompt runs SAM 2 on the
prompted frame at once, outside this schedule.) Every decision carries its reasons, so each
output can say why the frame was (or was not) a keyframe.
"""

from __future__ import annotations

from dataclasses import dataclass

# Reasons, in the order they are reported.
FIRST_FRAME = 'first_frame'
DRIFT_SUSPECTED = 'drift_suspected'
LOST_OBJECT = 'lost_object'
LOW_FLOW_CONFIDENCE = 'low_flow_confidence'
LARGE_MOTION = 'large_motion'
INTERVAL = 'interval'
PROPAGATED = 'propagated'  # the reason a frame is *not* a keyframe


@dataclass
class KeyframeConfig:
    """When SAM 2 runs. Every field may change between frames (live parameters)."""

    interval: int = 5  # frames between scheduled keyframes; 1 = SAM 2 on every frame
    min_flow_confidence: float = 0.3  # propagation below this forces a keyframe
    max_motion_px: float = 40.0  # centroid motion per frame above this forces a keyframe
    lost_search_interval: int = 1  # keyframe every N frames while an object is lost

    def validate(self) -> None:
        """Raise ValueError naming the first invalid field."""
        if self.interval < 1:
            raise ValueError(f'interval must be >= 1, got {self.interval}')
        if not 0.0 <= self.min_flow_confidence <= 1.0:
            raise ValueError(
                f'min_flow_confidence must be in [0, 1], got {self.min_flow_confidence}'
            )
        if self.max_motion_px <= 0:
            raise ValueError(f'max_motion_px must be > 0, got {self.max_motion_px}')
        if self.lost_search_interval < 1:
            raise ValueError(f'lost_search_interval must be >= 1, got {self.lost_search_interval}')


@dataclass(frozen=True)
class FrameSignals:
    """What the pipeline knows about a frame before deciding."""

    frames_since_keyframe: int  # 0 right after a keyframe; -1 when there was none yet
    drift_suspected: bool = False
    lost_objects: int = 0
    min_flow_confidence: float | None = None  # over propagated objects; None if none
    max_motion_px: float = 0.0


@dataclass(frozen=True)
class KeyframeDecision:
    """Whether SAM 2 runs on this frame, and why (or why not)."""

    is_keyframe: bool
    reasons: tuple[str, ...]


class KeyframeScheduler:
    """Fixed-interval keyframes plus adaptive triggers."""

    def __init__(self, config: KeyframeConfig | None = None) -> None:
        """Use `config` (validated), or the defaults."""
        self.config = config or KeyframeConfig()
        self.config.validate()

    def decide(self, signals: FrameSignals) -> KeyframeDecision:
        """Return the decision for one frame."""
        c = self.config
        reasons = []
        since = signals.frames_since_keyframe
        if since < 0:
            reasons.append(FIRST_FRAME)
        if signals.drift_suspected:
            reasons.append(DRIFT_SUSPECTED)
        if signals.lost_objects and since >= 0 and (since + 1) % c.lost_search_interval == 0:
            reasons.append(LOST_OBJECT)
        if (
            signals.min_flow_confidence is not None
            and signals.min_flow_confidence < c.min_flow_confidence
        ):
            reasons.append(LOW_FLOW_CONFIDENCE)
        if signals.max_motion_px > c.max_motion_px:
            reasons.append(LARGE_MOTION)
        if since >= 0 and since + 1 >= c.interval:
            reasons.append(INTERVAL)
        if reasons:
            return KeyframeDecision(True, tuple(reasons))
        return KeyframeDecision(False, (PROPAGATED,))
