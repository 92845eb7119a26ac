"""Per-object tracking states, shared by the pipeline, the messages and the tools.

Kept apart from `tracking_types` (which imports the SAM 2 tracker, hence torch) so that the
bag tools and the browser console can name states without loading a model stack.
"""

from __future__ import annotations

import enum


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
