"""Instance-id images: one pixel value per object, 0 for the background."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

MAX_LABEL = 65535  # a 16-bit label image holds ids up to this


def label_image(masks: Iterable[tuple[int, np.ndarray]], shape: tuple[int, int]) -> np.ndarray:
    """Return the id image of `(object id, (H, W) bool mask)` pairs; uint8 up to id 255.

    Where masks overlap, the higher id is on top. An id above 65535 raises ValueError: it
    does not fit a 16-bit image, and wrapping it would name another object.
    """
    masks = sorted(masks, key=lambda pair: pair[0])
    top = masks[-1][0] if masks else 0
    if top > MAX_LABEL:
        raise ValueError(f'object id {top} does not fit a 16-bit label image')
    labels = np.zeros(shape, dtype=np.uint8 if top <= 255 else np.uint16)
    for obj_id, mask in masks:
        labels[mask] = obj_id
    return labels
