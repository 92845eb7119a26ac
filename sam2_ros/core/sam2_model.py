"""Build a SAM 2.1 video model: size, checkpoint, device, precision, model input size.

Precision is one dtype for the whole model (autocast, as sam2 does on CUDA) or one per
component (sam2_ros.core.precision): `auto` is bf16 on CUDA and on a CPU with native bf16
(AVX512-BF16 or AMX), the fastest setting measured there within the agreement bound.

Checkpoints come from the Hugging Face Hub by default (the official SAM 2.1 ids), or from a
local file. Every failure is a ModelLoadError that says what to do, raised within seconds:
an unknown size, a missing, corrupt or mismatched file, an impossible download. The untrained
mode (random weights, for tests and benchmarks) is explicit and logged as a warning.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
import logging
import os
import socket
from urllib.parse import urlsplit

import torch

from sam2_ros.core.precision import (
    COMPONENTS,
    DTYPES,
    PrecisionError,
    auto_components,
    cpu_has_native_bf16,
    describe_components,
    install_islands,
    parse_components,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelSize:
    """One SAM 2.1 model size: its config inside the sam2 package and its Hub checkpoint."""

    config: str
    hf_repo: str
    filename: str


SAM2_SIZES: dict[str, ModelSize] = {
    'tiny': ModelSize(
        'configs/sam2.1/sam2.1_hiera_t.yaml', 'facebook/sam2.1-hiera-tiny', 'sam2.1_hiera_tiny.pt'
    ),
    'small': ModelSize(
        'configs/sam2.1/sam2.1_hiera_s.yaml',
        'facebook/sam2.1-hiera-small',
        'sam2.1_hiera_small.pt',
    ),
    'base_plus': ModelSize(
        'configs/sam2.1/sam2.1_hiera_b+.yaml',
        'facebook/sam2.1-hiera-base-plus',
        'sam2.1_hiera_base_plus.pt',
    ),
    'large': ModelSize(
        'configs/sam2.1/sam2.1_hiera_l.yaml',
        'facebook/sam2.1-hiera-large',
        'sam2.1_hiera_large.pt',
    ),
}

PRECISIONS = ('auto', 'bf16', 'fp16', 'fp32')
DEVICES = ('auto', 'cpu', 'cuda')
DEFAULT_IMAGE_SIZE = 1024
# Seconds allowed to reach the Hub before a download counts as impossible.
DOWNLOAD_TIMEOUT_S = 10
# One TCP connection to the Hub before downloading: without a network, huggingface_hub retries
# for about 25 s before it gives up.
PROBE_TIMEOUT_S = 3.0
PROXY_VARIABLES = ('HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy', 'ALL_PROXY')


class ModelLoadError(RuntimeError):
    """A model that cannot be built or loaded; the message says why and what to do."""


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


def download_checkpoint(size: str) -> str:
    """Fetch the official SAM 2.1 checkpoint of `size` from the Hub (or its cache)."""
    spec = SAM2_SIZES[size]
    try:
        from huggingface_hub import hf_hub_download
    except ImportError as error:
        raise ModelLoadError(
            'huggingface_hub is needed to download SAM 2 checkpoints: pip install huggingface_hub'
        ) from error
    from huggingface_hub import constants

    try:  # the local cache first: no network when the file is already there
        return hf_hub_download(spec.hf_repo, spec.filename, local_files_only=True)
    except Exception:  # noqa: BLE001 - any miss means "not cached", try the network next
        pass
    advice = 'download it elsewhere and pass its path as the checkpoint.'
    if constants.HF_HUB_OFFLINE:
        raise ModelLoadError(
            f'{spec.filename} ({spec.hf_repo}) is not in the Hugging Face cache and '
            f'HF_HUB_OFFLINE is set; {advice}'
        )
    unreachable = hub_unreachable(constants.ENDPOINT)
    if unreachable:
        raise ModelLoadError(
            f'could not download {spec.filename} from the Hugging Face Hub ({spec.hf_repo}): '
            f'{unreachable}. On a machine without internet access, {advice}'
        )
    logger.info(
        'downloading %s from %s (%s), not in the Hugging Face cache yet',
        spec.filename,
        constants.ENDPOINT,
        spec.hf_repo,
    )
    try:
        return hf_hub_download(spec.hf_repo, spec.filename, etag_timeout=DOWNLOAD_TIMEOUT_S)
    except Exception as error:  # noqa: BLE001 - the hub raises many kinds; all mean "not here"
        raise ModelLoadError(
            f'could not download {spec.filename} from the Hugging Face Hub '
            f'({spec.hf_repo}): {type(error).__name__}: {_first_line(error)}. '
            f'On a machine without internet access, download it elsewhere and pass its path '
            f'as the checkpoint.'
        ) from error


def hub_unreachable(endpoint: str, timeout_s: float = PROBE_TIMEOUT_S) -> str | None:
    """Return why the Hub `endpoint` cannot be reached (one TCP connection), or None.

    Behind a proxy (the *_PROXY variables) the proxy decides, so nothing is probed.
    """
    if any(os.environ.get(name) for name in PROXY_VARIABLES):
        return None
    url = urlsplit(endpoint)
    host = url.hostname or ''
    port = url.port or (443 if url.scheme == 'https' else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return None
    except OSError as error:
        reason = error.strerror or str(error) or type(error).__name__
        return f'{host}:{port} cannot be reached ({reason})'


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else 'no details'


def _load_state_dict(path: str) -> dict:
    if not os.path.isfile(path):
        raise ModelLoadError(f'checkpoint file not found: {path}')
    try:
        checkpoint = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as error:  # noqa: BLE001 - pickle, zip and torch errors alike
        raise ModelLoadError(
            f'{path} is not a readable PyTorch checkpoint (corrupt or truncated?): '
            f'{type(error).__name__}: {_first_line(error)}'
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
    compile: bool = False,
) -> LoadedModel:
    """Build the SAM 2.1 video model of `size` and load its weights.

    checkpoint: None downloads the official weights of `size` from the Hugging Face Hub (or
    uses the local Hub cache); a path loads that file. untrained=True builds random weights
    (seeded) and ignores `checkpoint`: for tests and benchmarks only, and logged as such.
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
    model = model.to(torch_device).eval()
    dtypes = set(components.values())
    if len(dtypes) == 1:  # one dtype: whole-model autocast, as sam2's predictor does
        dtype, islands = dtypes.pop(), None
    else:
        dtype, islands = torch.float32, components
        install_islands(model, torch_device.type, components)
    if compile:
        model.image_encoder.compile(dynamic=False)
        logger.info('image encoder wrapped in torch.compile: the first step compiles it')
    loaded = LoadedModel(model, size, torch_device, dtype, image_size, path, untrained, islands)
    logger.info('loaded %s', loaded.describe())
    return loaded
