"""Carry a prompt from the frame the user clicked on to the newest tracked frame.

A user clicks on what a display showed, which by the time the click arrives is a few frames
old; the object may have moved. The prompt's geometry is interpreted on that frame and then
carried forward through the frames received since, by the same sparse flow that carries masks
between keyframes (`FlowPropagator`):

- the foreground part (foreground points, the box, the mask) moves as one rigid region: the
  union of disks around the foreground points, the box and the mask;
- each background point moves with a disk around itself (it usually lies on something else);
- a region without a reliable fit moves with the scene (the dominant motion of the frame),
  except the foreground region: if the object itself cannot be followed, the prompt is
  rejected with the reason rather than applied somewhere wrong;
- what did not change does not move: a step between frames that are the same up to sensor
  noise is the identity, and so is a step for a region whose pixels (and a margin around
  them) did not change while the scene stood still. Low texture then never means "cannot
  follow": a still camera can be prompted on a plain wall.

Carrying prompts, rather than re-running SAM 2 over the buffered frames, costs a few ms per
frame and never stalls the live stream.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from sam2_ros.core.flow import IDENTITY, Anchor, FlowFrame, FlowPropagator, compose
from sam2_ros.core.prompts import FOREGROUND, Prompt, PromptError

SCENE = -1  # region key of the whole frame
FOREGROUND_REGION = 0
# "Unchanged" between two frames: at most STILL_FRACTION of the pixels differ by more than
# CHANGED_LEVEL grey levels (sensor noise and compression stay well below it).
CHANGED_LEVEL = 12
STILL_FRACTION = 0.002
STILL_SCENE_PX = 0.5  # the scene moved less than this (at the frame corners): standing still


@dataclass(frozen=True)
class CarriedPrompt:
    """A prompt moved to the newest frame, and how it moved."""

    prompt: Prompt
    frames: int  # frame-to-frame steps carried through
    motion_px: float  # displacement of the foreground region's centre, pixels
    confidence: float  # lowest flow confidence of the foreground region along the way


def _disk_radius(width: int, height: int) -> int:
    return max(8, round(0.04 * min(width, height)))


def _regions(prompt: Prompt, width: int, height: int) -> dict[int, np.ndarray]:
    radius = _disk_radius(width, height)
    foreground = np.zeros((height, width), dtype=np.uint8)
    regions: dict[int, np.ndarray] = {}
    for i, ((x, y), label) in enumerate(zip(prompt.points, prompt.labels, strict=True)):
        if label == FOREGROUND:
            cv2.circle(foreground, (round(x), round(y)), radius, 1, -1)
        else:
            disk = np.zeros((height, width), dtype=np.uint8)
            cv2.circle(disk, (round(x), round(y)), radius, 1, -1)
            regions[i + 1] = disk.astype(bool)
    if prompt.box is not None:
        x0, y0, x1, y1 = (round(v) for v in prompt.box)
        foreground[y0:y1, x0:x1] = 1
    if prompt.mask is not None:
        foreground[prompt.mask] = 1
    if foreground.any():
        regions[FOREGROUND_REGION] = foreground.astype(bool)
    regions[SCENE] = np.ones((height, width), dtype=bool)
    return regions


def _at_work_size(mask: np.ndarray, frame: FlowFrame) -> np.ndarray:
    """Return a full-resolution uint8 mask on the flow frame's (downscaled) grid, as bool."""
    height, width = frame.gray.shape
    if mask.shape != (height, width):
        mask = cv2.resize(mask, (width, height), interpolation=cv2.INTER_NEAREST)
    return mask > 0


def _margin_kernel(width: int, height: int) -> np.ndarray:
    size = 2 * _disk_radius(width, height) + 1
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))


def _unchanged(before: np.ndarray, after: np.ndarray, where: np.ndarray | None = None) -> bool:
    """Whether two grey frames are the same up to noise (within the `where` mask if given)."""
    diff = cv2.absdiff(before, after)
    if where is not None:
        diff = diff[where]
    if diff.size == 0:
        return True
    return np.count_nonzero(diff > CHANGED_LEVEL) <= STILL_FRACTION * diff.size


def _displacement(matrix: np.ndarray, width: int, height: int) -> float:
    """Return the largest distance the frame's corners move under `matrix`."""
    corners = np.array([[0, 0], [width, 0], [0, height], [width, height]], dtype=np.float64)
    return float(np.linalg.norm(_apply(matrix, corners) - corners, axis=1).max())


def _apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


def carry_prompt(
    prompt: Prompt,
    frames: list[np.ndarray],
    propagator: FlowPropagator,
    min_confidence: float = 0.05,
) -> CarriedPrompt:
    """Carry `prompt`, given on `frames[0]`, to `frames[-1]` (RGB frames in time order).

    Raises PromptError when the foreground cannot be followed or leaves the image.
    """
    if not frames:
        raise ValueError('carry_prompt needs at least the prompted frame')
    prepared = [propagator.prepare(frame) for frame in frames]
    return carry_prompt_prepared(prompt, prepared, propagator, min_confidence)


def carry_prompt_prepared(
    prompt: Prompt,
    frames: list[FlowFrame],
    propagator: FlowPropagator,
    min_confidence: float = 0.05,
) -> CarriedPrompt:
    """`carry_prompt` over frames already prepared for flow (`FlowPropagator.prepare`)."""
    if not frames:
        raise ValueError('carry_prompt needs at least the prompted frame')
    width, height = frames[0].width, frames[0].height
    if len(frames) == 1:
        return CarriedPrompt(prompt, 0, 0.0, 1.0)
    regions = _regions(prompt, width, height)
    anchors = {key: Anchor(mask, IDENTITY) for key, mask in regions.items()}
    current = dict(regions)
    fitted = {key: True for key in regions}
    confidence = 1.0
    previous = frames[0]
    margin = _margin_kernel(width, height)
    for flow_frame in frames[1:]:
        if (flow_frame.width, flow_frame.height) != (width, height):
            raise PromptError(
                'the image size changed since the prompted frame; prompt on the latest frame'
            )
        if _unchanged(previous.gray, flow_frame.gray):  # nothing moved: every region stays
            previous = flow_frame
            continue
        moved = propagator.propagate(previous, flow_frame, current, anchors)
        scene = moved[SCENE]
        scene_matrix = scene.matrix if scene.matrix is not None else IDENTITY
        scene_still = scene.matrix is None or _displacement(scene.matrix, width, height) < (
            STILL_SCENE_PX
        )
        for key, result in moved.items():
            if (
                key != SCENE
                and scene_still
                and _unchanged(
                    previous.gray,
                    flow_frame.gray,
                    _at_work_size(cv2.dilate(current[key].view(np.uint8), margin), flow_frame),
                )
            ):
                continue  # the region and its surroundings stayed put: so did it
            if result.matrix is not None and result.confidence >= min_confidence:
                anchors[key] = Anchor(regions[key], result.anchor_matrix)
                current[key] = result.mask
            else:  # no reliable fit: follow the scene for this step
                fitted[key] = fitted[key] and key != FOREGROUND_REGION
                anchors[key] = Anchor(regions[key], compose(scene_matrix, anchors[key].matrix))
                current[key] = FlowPropagator.warp(regions[key], anchors[key].matrix)
            if key == FOREGROUND_REGION:
                confidence = min(confidence, result.confidence)
        previous = flow_frame
    if FOREGROUND_REGION in regions and not fitted[FOREGROUND_REGION]:
        raise PromptError(
            f'the prompted object could not be followed through the {len(frames) - 1} frames '
            'since the prompted frame (too little texture or too much change); prompt on the '
            'latest frame instead'
        )
    return _moved_prompt(prompt, anchors, width, height, len(frames) - 1, confidence)


def _moved_prompt(prompt, anchors, width, height, steps, confidence) -> CarriedPrompt:
    fg_matrix = anchors.get(FOREGROUND_REGION, anchors[SCENE]).matrix
    points = prompt.points.astype(np.float64).copy()
    for i, label in enumerate(prompt.labels):
        matrix = fg_matrix if label == FOREGROUND else anchors[i + 1].matrix
        points[i] = _apply(matrix, points[i : i + 1])[0]
    foreground = points[prompt.labels == FOREGROUND]
    outside = (
        (foreground[:, 0] < 0)
        | (foreground[:, 0] > width)
        | (foreground[:, 1] < 0)
        | (foreground[:, 1] > height)
    )
    if outside.any():
        raise PromptError('the clicked object has left the image since the prompted frame')
    keep = (
        (points[:, 0] >= 0)
        & (points[:, 0] <= width)
        & (points[:, 1] >= 0)
        & (points[:, 1] <= height)
    )  # background points that left the image no longer constrain anything
    box = None
    if prompt.box is not None:
        x0, y0, x1, y1 = prompt.box
        corners = _apply(fg_matrix, np.array([[x0, y0], [x1, y0], [x0, y1], [x1, y1]], float))
        box = np.array(
            [
                np.clip(corners[:, 0].min(), 0, width),
                np.clip(corners[:, 1].min(), 0, height),
                np.clip(corners[:, 0].max(), 0, width),
                np.clip(corners[:, 1].max(), 0, height),
            ],
            dtype=np.float32,
        )
        if box[2] - box[0] < 1 or box[3] - box[1] < 1:
            raise PromptError('the prompted box has left the image since the prompted frame')
    mask = None
    if prompt.mask is not None:
        mask = FlowPropagator.warp(prompt.mask, fg_matrix)
        if not mask.any():
            raise PromptError('the prompted mask has left the image since the prompted frame')
    if not keep.any() and box is None and mask is None:
        raise PromptError('every prompted point has left the image since the prompted frame')
    centre = np.array([[width / 2.0, height / 2.0]])
    if FOREGROUND_REGION in anchors:
        ys, xs = np.nonzero(anchors[FOREGROUND_REGION].mask)
        centre = np.array([[xs.mean(), ys.mean()]])
    motion = float(np.linalg.norm(_apply(fg_matrix, centre) - centre))
    carried = Prompt(
        points=points[keep].astype(np.float32),
        labels=prompt.labels[keep],
        box=box,
        mask=mask,
    )
    return CarriedPrompt(carried, steps, motion, float(confidence))
