"""Thread pools of torch (SAM 2, detector) and OpenCV (flow, decode, resize), per process.

Both libraries size their pools to every core by default; in the node they run at once (SAM 2
on its worker thread, flow and image conversion on the frame path), so two full pools fight
over the same cores. `apply_threads` sets both from the node's parameters; bench/threads.py
measures the combinations (README "Speed of a SAM 2 step").
"""

from __future__ import annotations

import os

import cv2
import torch


def cpu_count() -> int:
    """Cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def resolve_threads(torch_threads: int, opencv_threads: int, cores: int) -> tuple[int, int]:
    """Map the parameters (0: the default) to thread counts for `cores` cores.

    torch_threads 0: every core (torch's own default). opencv_threads 0: one thread, since
    flow and image conversion on the frame path are short calls that a pool only slows down
    while SAM 2 holds the cores (bench/threads.py).
    """
    for name, value in (('torch_threads', torch_threads), ('opencv_threads', opencv_threads)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f'{name} must be an integer >= 0 (0: default), got {value!r}')
    return (torch_threads or cores, opencv_threads or 1)


def apply_threads(torch_threads: int, opencv_threads: int) -> tuple[int, int]:
    """Set torch's intra-op and OpenCV's thread counts; return what was set."""
    torch_n, opencv_n = resolve_threads(torch_threads, opencv_threads, cpu_count())
    torch.set_num_threads(torch_n)
    cv2.setNumThreads(opencv_n)
    return torch_n, opencv_n
