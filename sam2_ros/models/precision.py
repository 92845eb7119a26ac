"""Compute precision per SAM 2 component: fp32, bf16 or fp16 islands inside one model.

A SAM 2 step runs four networks: the image encoder, memory attention, the prompt encoder with
the mask decoder, and the memory encoder. Each can run in its own precision: its module's
forward runs under autocast of that dtype (or with autocast off, its inputs cast to fp32), and
its floating outputs are cast back to fp32, so the glue code between components runs in fp32
as in a plain fp32 model. One dtype for every component instead uses whole-model autocast,
exactly as sam2's own predictor does on CUDA.

`cpu_has_native_bf16` and `auto_components` decide what `precision: auto` means on a CPU: a
rule on the CPU's flags rather than a measurement at configure, which would cost several steps
(seconds each at 1024 px) and be decided by whatever else loads the machine at that moment;
README "Speed of a SAM 2 step" has the measurement behind the rule.
"""

from __future__ import annotations

from collections.abc import Mapping
import functools

import torch

from sam2_ros.models.catalog import COMPONENTS, parse_component_precision

# Component name (catalog.COMPONENTS, in order) -> the SAM2Base submodules that make it up.
COMPONENT_MODULES: dict[str, tuple[str, ...]] = {
    'image_encoder': ('image_encoder',),
    'memory_attention': ('memory_attention',),
    'mask_decoder': ('sam_prompt_encoder', 'sam_mask_decoder'),
    'memory_encoder': ('memory_encoder',),
}

DTYPES = {'fp32': torch.float32, 'bf16': torch.bfloat16, 'fp16': torch.float16}
DTYPE_NAMES = {dtype: name for name, dtype in DTYPES.items()}
_CPU_FLAGS_PATH = '/proc/cpuinfo'


def parse_components(text: str) -> dict[str, torch.dtype]:
    """Parse 'image_encoder=bf16,memory_attention=fp32' (unnamed components stay fp32)."""
    return {name: DTYPES[dtype] for name, dtype in parse_component_precision(text).items()}


def describe_components(components: Mapping[str, torch.dtype]) -> str:
    """'fp32' / 'bf16' when uniform, else 'image_encoder=bf16,memory_attention=fp32,...'."""
    names = {DTYPE_NAMES[components[c]] for c in COMPONENTS}
    if len(names) == 1:
        return names.pop()
    return ','.join(f'{c}={DTYPE_NAMES[components[c]]}' for c in COMPONENTS)


def cpu_flags(path: str = _CPU_FLAGS_PATH) -> set[str]:
    """Return the CPU feature flags of /proc/cpuinfo (empty where it cannot be read)."""
    try:
        with open(path, encoding='ascii', errors='replace') as file:
            for line in file:
                if line.startswith('flags'):
                    return set(line.partition(':')[2].split())
    except OSError:
        pass
    return set()


def cpu_has_native_bf16(flags: set[str] | None = None) -> bool:
    """Return True where the CPU computes bf16 natively (AVX512-BF16 or AMX-BF16)."""
    flags = cpu_flags() if flags is None else flags
    return bool(flags & {'avx512_bf16', 'amx_bf16'})


def auto_components(native_bf16: bool) -> dict[str, torch.dtype]:
    """Return what `precision: auto` runs on a CPU: bf16 throughout where it is native.

    Measured with bench/step_profile.py (SAM 2.1 tiny, 1024 px, interleaved): on a CPU with
    AVX512-BF16 and AMX every component is faster in bf16 than in fp32, memory attention the
    most, and no mix beats bf16 throughout; bench/precision_agreement.py checks the masks
    against fp32. Without native bf16 it is emulated, so fp32 throughout.
    """
    return dict.fromkeys(COMPONENTS, torch.bfloat16 if native_bf16 else torch.float32)


def _cast(value, dtype: torch.dtype):
    """Cast every floating tensor inside tuples, lists and dicts to `dtype`."""
    if isinstance(value, torch.Tensor):
        return value.to(dtype) if value.is_floating_point() and value.dtype != dtype else value
    if isinstance(value, dict):
        return {key: _cast(item, dtype) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_cast(item, dtype) for item in value)
    return value


def _island(forward, device_type: str, dtype: torch.dtype):
    """Wrap a module's forward to run in `dtype` and return fp32."""

    @functools.wraps(forward)
    def run(*args, **kwargs):
        if dtype == torch.float32:
            with torch.autocast(device_type=device_type, enabled=False):
                return forward(*_cast(args, torch.float32), **_cast(kwargs, torch.float32))
        with torch.autocast(device_type=device_type, dtype=dtype):
            return _cast(forward(*args, **kwargs), torch.float32)

    run.precision_island = dtype
    return run


def install_islands(
    model: torch.nn.Module, device_type: str, components: Mapping[str, torch.dtype]
) -> None:
    """Make each component of `model` run in its own dtype (see the module docstring)."""
    for component, dtype in components.items():
        for name in COMPONENT_MODULES[component]:
            module = getattr(model, name)
            forward = module.forward
            original = getattr(forward, '__wrapped__', forward)
            module.forward = _island(original, device_type, dtype)
