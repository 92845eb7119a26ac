"""What the process and the model use of memory: RSS, the CUDA allocator's counters, weights."""

from __future__ import annotations

import torch

from sam2_ros.core.memory import MemoryReading, peak_rss_mb, rss_mb


def read_memory(device: torch.device | None) -> MemoryReading:
    """Measure the process's RSS, and the CUDA allocator's on a CUDA `device`."""
    if device is None or device.type != 'cuda':
        return MemoryReading(rss_mb(), peak_rss_mb())
    mib = 2**20
    return MemoryReading(
        rss_mb(),
        peak_rss_mb(),
        torch.cuda.memory_allocated(device) / mib,
        torch.cuda.max_memory_allocated(device) / mib,
        torch.cuda.memory_reserved(device) / mib,
    )


def model_bytes(model: torch.nn.Module) -> int:
    """Bytes of a model's parameters and buffers (what it holds before any step)."""
    tensors = list(model.parameters()) + list(model.buffers())
    return sum(t.numel() * t.element_size() for t in tensors)
