"""Shared pieces of the SAM 2 tracker tests: a small untrained model and moving frames."""

from __future__ import annotations

import numpy as np

# The tracker tests run the real SAM 2.1 tiny architecture with untrained weights at a 256 px
# model input (about 0.1 s per step on 2 CPU cores): the same code paths as 1024 px.
IMAGE_SIZE = 256


def moving_frames(count: int, width: int = 160, height: int = 120, seed: int = 0):
    """Frames of a textured square moving over a textured background, deterministic."""
    rng = np.random.default_rng(seed)
    background = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    patch = rng.integers(0, 256, size=(30, 30, 3), dtype=np.uint8)
    frames = []
    for i in range(count):
        frame = background.copy()
        x = 20 + (2 * i) % (width - 60)
        y = 30 + i % (height - 60)
        frame[y : y + 30, x : x + 30] = patch
        frames.append(frame)
    return frames
