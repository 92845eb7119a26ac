"""Types shared by the tracking pipeline and everything that plugs into it; torch-free.

`TrackState` names an object's state on one frame (the values of TrackedObject's constants).
`ObjectResult` and `StepResult` are what a segmenter returns. `Segmenter` is the interface of the
SAM 2 streaming tracker as the pipeline uses it: the real `StreamingTracker`
(sam2_ros.models) implements it, and so does the oracle segmenter used to measure the parts
around SAM 2. `Detector` is the interface of the YOLOv10 wrapper and of the oracle detector.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import enum
from typing import Protocol

import numpy as np


class TrackState(enum.IntEnum):
    """Per-object state on one frame; values equal sam2_ros/msg/TrackedObject's constants."""

    TRACKING = 0  # SAM 2 segmented the object on this frame (a keyframe)
    PROPAGATED = 1  # carried from the last keyframe by optical flow
    REANCHORED = 2  # drift detected, re-prompted from a detection on this frame
    LOST = 3  # no reliable mask; searched for on keyframes


def state_name(value: int) -> str:
    """Return the name of a TrackedObject.state value; the number itself if it is unknown."""
    try:
        return TrackState(value).name
    except ValueError:
        return str(value)


class UnknownObjectError(KeyError):
    """An object id the tracker does not know."""

    def __str__(self) -> str:  # KeyError quotes its argument; keep the message readable
        return str(self.args[0])


@dataclass
class ObjectResult:
    """One object's output on one step."""

    obj_id: int
    mask: np.ndarray  # (H, W) bool, full frame resolution
    score: float  # SAM 2 predicted IoU of the chosen mask
    visibility: float  # sigmoid of SAM 2's object score: probability the object is visible
    object_score_logit: float
    is_conditioning: bool  # True when this output comes from a prompt on this step
    # (S/4, S/4) float32 low-res mask logits (S = model input): the model's own tensor (torch),
    # opaque to the core, which only hands it back to the segmenter; None when not kept
    logits: object
    candidates: list[np.ndarray] = field(default_factory=list)  # multimask outputs, if any
    candidate_scores: list[float] = field(default_factory=list)


@dataclass
class StepResult:
    """Every object's output on one SAM 2 step."""

    step: int
    objects: dict[int, ObjectResult]


@dataclass(frozen=True)
class Detection:
    """One detector output in pixel coordinates of the frame."""

    box: tuple[float, float, float, float]  # x_min, y_min, x_max, y_max
    score: float  # detector confidence in [0, 1]
    class_id: int
    class_name: str


class Segmenter(Protocol):
    """What the pipeline needs from a promptable video segmenter (see StreamingTracker).

    `max_group_size` caps how many objects one model call handles (None: no cap).
    """

    max_group_size: int | None

    @property
    def step_index(self) -> int:
        """Return the number of steps taken minus one (-1 before the first frame)."""

    @property
    def object_ids(self) -> list[int]:
        """Return the ids of the tracked objects, ascending."""

    def describe(self) -> str:
        """Return what segments (the model), for logs."""

    def step(self, frame: np.ndarray) -> StepResult:
        """Segment every object on the next frame."""

    def add_object(
        self, points=None, labels=None, box=None, mask=None, obj_id: int | None = None
    ) -> ObjectResult:
        """Start an object from a prompt on the current step."""

    def refine(
        self, obj_id: int, points=None, labels=None, box=None, mask=None, clear_old=False
    ) -> ObjectResult:
        """Correct an object with a prompt on the current step."""

    def reanchor(self, obj_id: int, box, drop_since_step: int | None = None) -> ObjectResult:
        """Re-prompt an object from a box and drop memories written since a step."""

    def remove(self, obj_id: int) -> None:
        """Forget one object."""

    def checkpoint(self) -> object:
        """Return the state now (cheap: references), for `restore`."""

    def restore(self, checkpoint: object) -> None:
        """Go back to the state of a `checkpoint`: undo a step abandoned half-way."""

    def reset(self) -> None:
        """Forget everything."""


class Detector(Protocol):
    """What the pipeline needs from an object detector (YOLOv10)."""

    @property
    def class_names(self) -> dict[int, str]:
        """Return the class names by class id."""

    def detect(self, frame: np.ndarray) -> list[Detection]:
        """Return the detections on an RGB frame."""
