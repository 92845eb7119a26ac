"""What a user can choose for SAM 2 and where its checkpoints come from; torch-free.

The SAM 2.1 sizes with their configs and Hub ids, the devices and precisions, and the
checkpoint download (the Hugging Face cache first, a fast failure when the Hub cannot be
reached). Parameters, the demo and the tools read this without loading torch.
"""

from __future__ import annotations

from dataclasses import dataclass
import logging
import os
import socket
from urllib.parse import urlsplit

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
# The SAM 2 components that `component_precision` can set apart, and their dtypes.
COMPONENTS = ('image_encoder', 'memory_attention', 'mask_decoder', 'memory_encoder')
COMPONENT_DTYPES = ('fp32', 'bf16', 'fp16')


class PrecisionError(ValueError):
    """A precision specification that cannot be used; the message says why."""


def parse_component_precision(text: str) -> dict[str, str]:
    """Parse 'image_encoder=bf16,memory_attention=fp32' into dtype names per component.

    Unnamed components stay fp32. Raises PrecisionError naming what is wrong.
    """
    components = dict.fromkeys(COMPONENTS, 'fp32')
    items = [item.strip() for item in text.split(',') if item.strip()]
    if not items:
        raise PrecisionError('empty per-component precision; use component=dtype pairs')
    for item in items:
        name, sep, value = (part.strip() for part in item.partition('='))
        if not sep:
            raise PrecisionError(f"'{item}' is not component=dtype")
        if name not in COMPONENTS:
            raise PrecisionError(
                f"unknown SAM 2 component '{name}'; use one of {', '.join(COMPONENTS)}"
            )
        if value not in COMPONENT_DTYPES:
            raise PrecisionError(
                f"unknown dtype '{value}' for {name}; use {', '.join(COMPONENT_DTYPES)}"
            )
        components[name] = value
    return components


DEVICES = ('auto', 'cpu', 'cuda')
# Seconds allowed to reach the Hub before a download counts as impossible.
DOWNLOAD_TIMEOUT_S = 10
# One TCP connection to the Hub before downloading: without a network, huggingface_hub retries
# for about 25 s before it gives up.
PROBE_TIMEOUT_S = 3.0
PROXY_VARIABLES = ('HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy', 'ALL_PROXY')


class ModelLoadError(RuntimeError):
    """A model that cannot be built or loaded; the message says why and what to do."""


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
            f'({spec.hf_repo}): {type(error).__name__}: {first_line(error)}. '
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


def first_line(error: Exception) -> str:
    """Return the first line of an error's message, for one-line reasons."""
    text = str(error).strip()
    return text.splitlines()[0] if text else 'no details'
