"""Validation of frames and prompts before they reach a model.

Everything here raises PromptError (or FrameError) with a message naming the offending value;
nothing is modified, so a caller that catches the error keeps its state intact.
"""

from __future__ import annotations

from dataclasses import dataclass
import math

import numpy as np

BACKGROUND = 0
FOREGROUND = 1


class PromptError(ValueError):
    """A prompt that cannot be used; the message names the offending value."""


class FrameError(ValueError):
    """A frame that cannot be tracked on; the message says why."""


@dataclass(frozen=True)
class Prompt:
    """A validated prompt in the pixel coordinates of one frame.

    points: (N, 2) float32 (x, y); labels: (N,) int32, FOREGROUND or BACKGROUND;
    box: (4,) float32 [x_min, y_min, x_max, y_max] or None; mask: (H, W) bool or None.
    """

    points: np.ndarray
    labels: np.ndarray
    box: np.ndarray | None = None
    mask: np.ndarray | None = None


def validate_frame(frame) -> np.ndarray:
    """Check a frame is an HxWx3 uint8 RGB array with a positive size."""
    if not isinstance(frame, np.ndarray):
        raise FrameError(f'frame must be a numpy array, got {type(frame).__name__}')
    if frame.dtype != np.uint8:
        raise FrameError(f'frame dtype must be uint8 (RGB 0..255), got {frame.dtype}')
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise FrameError(f'frame must have shape (height, width, 3), got {frame.shape}')
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise FrameError(f'frame has zero size: {frame.shape}')
    return frame


def _finite(name: str, values: np.ndarray) -> None:
    bad = np.argwhere(~np.isfinite(values))
    if len(bad):
        index = tuple(int(i) for i in bad[0])
        raise PromptError(f'{name}{list(index)} is {values[index]}, not a finite number')


def make_prompt(
    width: int,
    height: int,
    points=None,
    labels=None,
    box=None,
    mask=None,
) -> Prompt:
    """Validate a prompt against a frame of `width` x `height` pixels.

    Points and box corners must lie in [0, width] x [0, height]; labels are 0 (background)
    or 1 (foreground); a box needs x_max > x_min and y_max > y_min; a mask must have the
    frame's shape. At least one of points, box or mask is required.
    """
    if points is None:
        points = np.zeros((0, 2), dtype=np.float32)
    points = np.asarray(points, dtype=np.float64)
    if points.size == 0:
        points = points.reshape(0, 2)
    if points.ndim != 2 or points.shape[1] != 2:
        raise PromptError(f'points must have shape (N, 2) as (x, y), got {points.shape}')
    labels = np.zeros(0) if labels is None else np.asarray(labels, dtype=np.float64).ravel()
    if len(labels) != len(points):
        raise PromptError(f'{len(points)} points but {len(labels)} labels')
    _finite('points', points)
    _finite('labels', labels)
    for i, (x, y) in enumerate(points):
        if not (0.0 <= x <= width and 0.0 <= y <= height):
            raise PromptError(f'point {i} ({x:g}, {y:g}) lies outside the {width}x{height} image')
    for i, label in enumerate(labels):
        if label not in (BACKGROUND, FOREGROUND):
            raise PromptError(f'label {i} is {label:g}; use 0 (background) or 1 (foreground)')

    box_array = None
    if box is not None:
        box_array = np.asarray(box, dtype=np.float64).ravel()
        if box_array.shape != (4,):
            raise PromptError(
                f'box must be [x_min, y_min, x_max, y_max], got {box_array.size} values'
            )
        _finite('box', box_array)
        x0, y0, x1, y1 = box_array
        if not (0 <= x0 <= width and 0 <= x1 <= width and 0 <= y0 <= height and 0 <= y1 <= height):
            raise PromptError(
                f'box {box_array.tolist()} extends outside the {width}x{height} image'
            )
        if x1 <= x0 or y1 <= y0:
            raise PromptError(
                f'box {box_array.tolist()} is empty or inverted: need x_max > x_min and '
                'y_max > y_min'
            )
        box_array = box_array.astype(np.float32)

    mask_array = None
    if mask is not None:
        mask_array = np.asarray(mask)
        if mask_array.shape != (height, width):
            raise PromptError(
                f'mask has shape {mask_array.shape}, the frame is {(height, width)} (rows, cols)'
            )
        if mask_array.dtype != np.bool_:
            if not np.issubdtype(mask_array.dtype, np.integer) or (
                mask_array.size and (mask_array.min() < 0 or mask_array.max() > 1)
            ):
                raise PromptError('mask must be boolean or integer 0/1')
            mask_array = mask_array.astype(np.bool_)
        if not mask_array.any():
            raise PromptError('mask is empty: it selects no pixel')
        if len(points) or box_array is not None:
            raise PromptError(
                'a mask prompt cannot be combined with points or a box on the same step; '
                'send the mask first, then refine it with points'
            )

    if not len(points) and box_array is None and mask_array is None:
        raise PromptError('empty prompt: give at least one point, a box or a mask')
    return Prompt(
        points=points.astype(np.float32),
        labels=labels.astype(np.int32),
        box=box_array,
        mask=mask_array,
    )


def scale_from_canvas(
    points: np.ndarray, canvas_size: tuple[int, int], image_size: tuple[int, int]
) -> np.ndarray:
    """Scale (x, y) coordinates from a displayed canvas (w, h) to image pixels (w, h).

    Multiplies before dividing: x * iw / cw is then the correctly rounded quotient, so the
    canvas's far edge (x = cw) maps exactly onto the image's (iw) and passes the bounds check.
    """
    cw, ch = canvas_size
    iw, ih = image_size
    if cw <= 0 or ch <= 0 or not all(math.isfinite(v) for v in (cw, ch)):
        raise PromptError(f'canvas size must be positive, got {cw}x{ch}')
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return points * np.array([iw, ih], dtype=np.float64) / np.array([cw, ch], dtype=np.float64)
