"""The colour of each object id: the overlay, the exported PNGs and the console agree on it."""

from __future__ import annotations

import cv2
import numpy as np


def object_color(obj_id: int) -> tuple[int, int, int]:
    """Return a stable, distinct BGR colour per object id.

    Hues step by 275 degrees per id (137.508 of OpenCV's 2-degree hue units), so that
    consecutive ids sit far apart on the hue circle and no two of the first 20 coincide.
    """
    hue = int((obj_id * 137.508) % 180)
    hsv = np.array([[[hue, 200, 255]]], dtype=np.uint8)
    b, g, r = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0]
    return int(b), int(g), int(r)
