"""Build a SAM 2.1 video model: size, checkpoint, device, precision, model input size.

Precision is one dtype for the whole model (autocast, as sam2 does on CUDA) or one per
component (sam2_ros.models.precision): `auto` is bf16 on CUDA and on a CPU with native bf16
(AVX512-BF16 or AMX), the fastest setting measured there within the agreement bound.

Checkpoints come from the Hugging Face Hub by default (the official SAM 2.1 ids), or from a
local file. Every failure is a ModelLoadError that says what to do, raised within seconds:
an unknown size, a missing, corrupt or mismatched file, an impossible download. The untrained
mode (random weights, for tests and benchmarks) is explicit and logged as a warning.

On CUDA the model may be given a share of the GPU's memory (`memory_fraction`, through
`torch.cuda.set_per_process_memory_fraction`); a model that does not fit, in that share or in
what the GPU has free, is a ModelLoadError that says so.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
import logging
import os

import torch

from sam2_ros.core.memory import is_out_of_memory, release_cached_memory
from sam2_ros.models.catalog import (
    DEVICES,
    PRECISIONS,
    SAM2_SIZES,
    ModelLoadError,
    PrecisionError,
    download_checkpoint,
    first_line,
)
from sam2_ros.models.memory_use import model_bytes
from sam2_ros.models.precision import (
    COMPONENTS,
    DTYPES,
    auto_components,
    cpu_has_native_bf16,
    describe_components,
    install_islands,
    parse_components,
)

logger = logging.getLogger(__name__)

DEFAULT_IMAGE_SIZE = 1024


@dataclass(frozen=True)
class LoadedModel:
    """A SAM 2 video model ready for inference, and how it was obtained."""

    model: torch.nn.Module
    size: str
    device: torch.device
    dtype: torch.dtype  # whole-model autocast dtype; torch.float32 means none
    image_size: int
    checkpoint: str | None  # None for untrained weights
    untrained: bool
    memory_budget: int | None = None  # bytes of the GPU this process may allocate; None: all
    components: dict | None = None  # component -> dtype (precision islands); None: uniform

    @property
    def precision(self) -> str:
        """'fp32', 'bf16', 'fp16', or the per-component setting."""
        return describe_components(self.components or dict.fromkeys(COMPONENTS, self.dtype))

    def autocast(self):
        """Return the autocast context for inference with this model's precision."""
        if self.dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def describe(self) -> str:
        """One line for logs and diagnostics."""
        weights = 'UNTRAINED (random) weights' if self.untrained else self.checkpoint
        return (
            f'SAM 2.1 {self.size}, input {self.image_size}px, {self.device}, '
            f'{self.precision}, {weights}'
        )


def resolve_device(device: str) -> torch.device:
    """Map 'auto' / 'cpu' / 'cuda' / 'cuda:N' to an available torch device."""
    if device == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    if device == 'cpu':
        return torch.device('cpu')
    if device == 'cuda' or device.startswith('cuda:'):
        if not torch.cuda.is_available():
            raise ModelLoadError(
                f"device '{device}' was requested but CUDA is not available "
                f'(torch {torch.__version__}); use device auto or cpu'
            )
        return torch.device(device)
    raise ModelLoadError(f"unknown device '{device}'; use one of {', '.join(DEVICES)} or cuda:N")


def resolve_precision(precision: str, device: torch.device) -> torch.dtype:
    """Return the whole-model autocast dtype of `precision` (fp32 where components differ)."""
    components = resolve_components(precision, device)
    dtypes = set(components.values())
    return dtypes.pop() if len(dtypes) == 1 else torch.float32


def resolve_components(precision: str, device: torch.device) -> dict[str, torch.dtype]:
    """Map a precision setting to each SAM 2 component's dtype on `device`.

    precision: 'auto', 'bf16', 'fp16', 'fp32', or per component, e.g.
    'image_encoder=bf16,memory_attention=fp32' (components left out run fp32). auto is bf16 on
    CUDA (fp16 where bf16 is unsupported) and on a CPU with native bf16, fp32 on other CPUs.
    """
    if '=' in precision:
        try:
            components = parse_components(precision)
        except PrecisionError as error:
            raise ModelLoadError(f'precision {precision!r}: {error}') from None
    elif precision not in PRECISIONS:
        raise ModelLoadError(
            f"unknown precision '{precision}'; use one of {', '.join(PRECISIONS)} or "
            f'component=dtype pairs ({", ".join(COMPONENTS)})'
        )
    elif precision == 'auto':
        if device.type == 'cuda':
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            return dict.fromkeys(COMPONENTS, dtype)
        return auto_components(cpu_has_native_bf16())
    else:
        components = dict.fromkeys(COMPONENTS, DTYPES[precision])
    wanted = set(components.values())
    if device.type == 'cuda':
        if torch.bfloat16 in wanted and not torch.cuda.is_bf16_supported():
            raise ModelLoadError('this GPU does not support bf16; use precision fp16 or auto')
    elif torch.bfloat16 in wanted and not cpu_has_native_bf16():
        logger.warning(
            'precision %s: this CPU has no native bf16 (avx512_bf16 / amx_bf16), so bf16 is '
            'emulated and usually slower than fp32; precision auto runs fp32 here',
            precision,
        )
    return components


def validate_image_size(image_size: int) -> int:
    """Model input sizes SAM 2 supports: multiples of 64 from 256 to 1024 (trained at 1024)."""
    if isinstance(image_size, bool) or not isinstance(image_size, int):
        raise ModelLoadError(f'image_size must be an integer, got {image_size!r}')
    if not 256 <= image_size <= 1024 or image_size % 64:
        raise ModelLoadError(
            f'image_size must be a multiple of 64 between 256 and 1024, got {image_size}'
        )
    return image_size


def _move_to_device(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """Move the built model to its device (where a model too large for it fails)."""
    return model.to(device)


def apply_memory_fraction(device: torch.device, fraction: float) -> int | None:
    """Cap this process's CUDA allocations at `fraction` of `device`'s memory (0: no cap).

    Returns the budget in bytes, or None without a cap. On the CPU a fraction means
    nothing: it is logged as ignored.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ModelLoadError(f'gpu_memory_fraction must be in [0, 1], got {fraction}')
    if device.type != 'cuda':
        if fraction:
            logger.warning(
                'gpu_memory_fraction=%g is ignored: SAM 2 runs on the CPU, where no GPU memory '
                'budget applies',
                fraction,
            )
        return None
    torch.cuda.set_per_process_memory_fraction(fraction or 1.0, device)
    if not fraction:
        return None
    return int(fraction * torch.cuda.get_device_properties(device).total_memory)


def _load_state_dict(path: str) -> dict:
    if not os.path.isfile(path):
        raise ModelLoadError(f'checkpoint file not found: {path}')
    try:
        checkpoint = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as error:  # noqa: BLE001 - pickle, zip and torch errors alike
        raise ModelLoadError(
            f'{path} is not a readable PyTorch checkpoint (corrupt or truncated?): '
            f'{type(error).__name__}: {first_line(error)}'
        ) from error
    if isinstance(checkpoint, dict) and isinstance(checkpoint.get('model'), dict):
        return checkpoint['model']
    raise ModelLoadError(
        f"{path} is not a SAM 2 checkpoint: expected a dict with a 'model' state dict"
    )


def _apply_state_dict(model: torch.nn.Module, state: dict, path: str, size: str) -> None:
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    reshaped = [
        k
        for k in expected
        if k in state
        and (not isinstance(state[k], torch.Tensor) or state[k].shape != expected[k].shape)
    ]
    problems = []
    for name, keys in (
        ('missing', missing),
        ('unexpected', unexpected),
        ('wrong-shape', reshaped),
    ):
        if keys:
            problems.append(f'{len(keys)} {name} (e.g. {keys[0]})')
    if problems:
        raise ModelLoadError(
            f'{path} does not match the SAM 2.1 {size} architecture: '
            + ', '.join(problems)
            + ' parameters; is it a checkpoint of another model size?'
        )
    model.load_state_dict(state, strict=True)


def load_sam2(
    size: str = 'tiny',
    checkpoint: str | None = None,
    device: str = 'auto',
    precision: str = 'auto',
    image_size: int = DEFAULT_IMAGE_SIZE,
    untrained: bool = False,
    seed: int = 0,
    memory_fraction: float = 0.0,
    compile: bool = False,
) -> LoadedModel:
    """Build the SAM 2.1 video model of `size` and load its weights.

    checkpoint: None downloads the official weights of `size` from the Hugging Face Hub (or
    uses the local Hub cache); a path loads that file. untrained=True builds random weights
    (seeded) and ignores `checkpoint`: for tests and benchmarks only, and logged as such.
    memory_fraction: on CUDA, the share of the GPU's memory this process may use (0: all).
    compile=True wraps the image encoder (fixed input shape) in torch.compile: the first step
    pays the compilation (README "Speed of a SAM 2 step" has the costs measured).
    """
    if size not in SAM2_SIZES:
        raise ModelLoadError(f"unknown SAM 2 size '{size}'; use one of {', '.join(SAM2_SIZES)}")
    torch_device = resolve_device(device)
    components = resolve_components(precision, torch_device)
    validate_image_size(image_size)
    if untrained:
        path = None
        logger.warning(
            'SAM 2.1 %s is built with UNTRAINED random weights (seed %d): its masks are '
            'meaningless; use this only for tests and benchmarks',
            size,
            seed,
        )
    else:
        path = checkpoint if checkpoint else download_checkpoint(size)
        state = _load_state_dict(path)  # before building: a bad file fails fast

    from sam2.build_sam import build_sam2_video_predictor

    overrides = [f'++model.image_size={image_size}']
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_sam2_video_predictor(
            SAM2_SIZES[size].config,
            ckpt_path=None,
            device='cpu',
            mode='eval',
            hydra_overrides_extra=overrides,
        )
    if path is not None:
        _apply_state_dict(model, state, path, size)
    budget = apply_memory_fraction(torch_device, memory_fraction)
    need = model_bytes(model)
    where = f'{torch_device}' + (
        f' within gpu_memory_fraction={memory_fraction:g} ({budget / 2**20:.0f} MiB)'
        if budget
        else ''
    )
    if budget is not None and need > budget:
        raise ModelLoadError(
            f'SAM 2.1 {size} needs {need / 2**20:.0f} MiB for its weights alone, more than '
            f'{where}; raise gpu_memory_fraction or use a smaller sam2_model'
        )
    failure = None
    try:
        model = _move_to_device(model, torch_device).eval()
    except Exception as error:  # noqa: BLE001 - only out-of-memory is reworded
        if not is_out_of_memory(error):
            raise
        failure = ModelLoadError(
            f'SAM 2.1 {size} ({need / 2**20:.0f} MiB of weights) does not fit in memory on '
            f'{where}: {type(error).__name__}: {first_line(error)}. Use a smaller sam2_model'
            + (', raise gpu_memory_fraction' if budget else '')
            + ' or free memory used by other processes'
        )
    if failure is not None:  # out of the except block: the error's frames are gone
        del model
        release_cached_memory()
        raise failure
    dtypes = set(components.values())
    if len(dtypes) == 1:  # one dtype: whole-model autocast, as sam2's predictor does
        dtype, islands = dtypes.pop(), None
    else:
        dtype, islands = torch.float32, components
        install_islands(model, torch_device.type, components)
    if compile:
        model.image_encoder.compile(dynamic=False)
        logger.info('image encoder wrapped in torch.compile: the first step compiles it')
    loaded = LoadedModel(
        model, size, torch_device, dtype, image_size, path, untrained, budget, islands
    )
    logger.info('loaded %s', loaded.describe())
    return loaded
