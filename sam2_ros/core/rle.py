"""COCO-style run-length encoding of binary masks.

The layout is pycocotools' uncompressed RLE: pixels in column-major order, counts starting
with a (possibly empty) run of zeros, then alternating runs of ones and zeros. That is the
convention of `sam2_ros/msg/Mask`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# No mask may claim more pixels than this unless the caller allows it: bigger than any camera
# frame the node accepts by default (max_image_pixels), and small enough to allocate.
DEFAULT_MAX_PIXELS = 1 << 26


@dataclass(frozen=True)
class RunLengthMask:
    """A binary mask as COCO-style run lengths."""

    height: int
    width: int
    counts: np.ndarray  # uint32 run lengths, alternating 0-runs and 1-runs, first run 0s

    @property
    def area(self) -> int:
        """Number of foreground pixels."""
        return int(self.counts[1::2].sum(dtype=np.int64))

    def to_coco(self) -> dict:
        """Return the pycocotools dictionary form: {'size': [h, w], 'counts': [...]}."""
        return {'size': [self.height, self.width], 'counts': self.counts.tolist()}


def encode_rle(mask: np.ndarray) -> RunLengthMask:
    """Encode a 2-D boolean (or 0/1) mask."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f'mask must be 2-D (height, width), got shape {mask.shape}')
    if mask.dtype != np.bool_:
        if not np.issubdtype(mask.dtype, np.integer):
            raise ValueError(f'mask must be boolean or integer 0/1, got dtype {mask.dtype}')
        if mask.size and (mask.min() < 0 or mask.max() > 1):
            raise ValueError('integer mask values must be 0 or 1')
        mask = mask.astype(np.bool_)
    height, width = mask.shape
    flat = mask.ravel(order='F')
    if flat.size == 0:
        return RunLengthMask(height, width, np.zeros(0, dtype=np.uint32))
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate(([0], change, [flat.size]))
    runs = np.diff(bounds)
    if flat[0]:
        runs = np.concatenate(([0], runs))
    return RunLengthMask(height, width, runs.astype(np.uint32))


def decode_rle(
    height: int, width: int, counts, max_pixels: int = DEFAULT_MAX_PIXELS
) -> np.ndarray:
    """Decode run lengths into a (height, width) boolean mask.

    Raises ValueError when the sizes are negative or claim more than `max_pixels` pixels
    (checked before anything is allocated), or the counts do not cover the mask exactly.
    """
    if height < 0 or width < 0:
        raise ValueError(f'mask size must be non-negative, got {height}x{width}')
    if height * width > max_pixels:
        raise ValueError(
            f'mask claims {height}x{width} = {height * width} pixels, more than the '
            f'maximum of {max_pixels}'
        )
    counts = np.asarray(counts, dtype=np.int64).ravel()
    if counts.size and counts.min() < 0:
        raise ValueError('RLE counts must be non-negative')
    total = int(counts.sum())
    if total != height * width:
        raise ValueError(
            f'RLE counts sum to {total} pixels but the mask is {height}x{width} '
            f'= {height * width} pixels'
        )
    values = (np.arange(counts.size) % 2).astype(np.bool_)
    flat = np.repeat(values, counts)
    return flat.reshape((height, width), order='F')
