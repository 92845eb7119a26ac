"""Types shared by the tracking pipeline and everything that plugs into it.

`Segmenter` is the interface of the SAM 2 streaming tracker as the pipeline uses it; the real
`StreamingTracker` implements it, and so does the oracle segmenter used to measure the parts
around SAM 2. `Detector` is the interface of the YOLOv10 wrapper and of the oracle detector.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from sam2_ros.core.streaming_tracker import ObjectResult, StepResult


@dataclass(frozen=True)
class Detection:
    """One detector output in pixel coordinates of the frame."""

    box: tuple[float, float, float, float]  # x_min, y_min, x_max, y_max
    score: float  # detector confidence in [0, 1]
    class_id: int
    class_name: str


class Segmenter(Protocol):
    """What the pipeline needs from a promptable video segmenter (see StreamingTracker)."""

    @property
    def step_index(self) -> int:
        """Return the number of steps taken minus one (-1 before the first frame)."""

    @property
    def object_ids(self) -> list[int]:
        """Return the ids of the tracked objects, ascending."""

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

    def reset(self) -> None:
        """Forget everything."""


class Detector(Protocol):
    """What the pipeline needs from an object detector (YOLOv10)."""

    @property
    def class_names(self) -> dict[int, str]:
        """Return the class names by class id."""

    def detect(self, frame: np.ndarray) -> list[Detection]:
        """Return the detections on an RGB frame."""
