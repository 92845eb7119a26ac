"""Model loading: sizes, checkpoints, devices, precisions, and their errors."""

import logging
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from tracker_fixtures import IMAGE_SIZE, moving_frames

from sam2_ros.models import sam2_model
from sam2_ros.models.sam2_model import SAM2_SIZES, ModelLoadError, load_sam2
from sam2_ros.models.streaming_tracker import StreamingTracker


@pytest.fixture(scope='module')
def untrained():
    return load_sam2(
        'tiny', untrained=True, device='cpu', precision='fp32', image_size=IMAGE_SIZE, seed=3
    )


@pytest.fixture(scope='module')
def checkpoint(untrained, tmp_path_factory):
    path = tmp_path_factory.mktemp('ckpt') / 'sam2.1_hiera_tiny_untrained.pt'
    torch.save({'model': untrained.model.state_dict()}, path)
    return path


def _track(loaded):
    frames = moving_frames(4)
    tracker = StreamingTracker(loaded)
    tracker.step(frames[0])
    logits = [tracker.add_object(points=[[35, 45]], labels=[1]).logits]
    logits += [tracker.step(frame).objects[1].logits for frame in frames[1:]]
    return logits


def test_sizes_map_to_sam2_1_configs_and_hub_ids():
    assert set(SAM2_SIZES) == {'tiny', 'small', 'base_plus', 'large'}
    for spec in SAM2_SIZES.values():
        assert spec.config.startswith('configs/sam2.1/sam2.1_hiera_')
        assert spec.hf_repo.startswith('facebook/sam2.1-hiera-')
        assert spec.filename.endswith('.pt')


def test_untrained_mode_is_logged_loudly(caplog):
    with caplog.at_level(logging.WARNING, logger='sam2_ros.models.sam2_model'):
        loaded = load_sam2('tiny', untrained=True, device='cpu', image_size=256)
    assert 'UNTRAINED random weights' in caplog.text
    assert loaded.untrained and loaded.checkpoint is None
    assert 'UNTRAINED' in loaded.describe()
    assert loaded.model.image_size == 256


def test_checkpoint_round_trip_gives_identical_outputs(untrained, checkpoint):
    reloaded = load_sam2(
        'tiny', checkpoint=str(checkpoint), device='cpu', precision='fp32', image_size=IMAGE_SIZE
    )
    assert not reloaded.untrained and reloaded.checkpoint == str(checkpoint)
    assert str(checkpoint) in reloaded.describe()
    for a, b in zip(_track(untrained), _track(reloaded), strict=True):
        torch.testing.assert_close(a, b, atol=0, rtol=0)
    fresh = load_sam2('tiny', untrained=True, device='cpu', image_size=IMAGE_SIZE, seed=4)
    assert not torch.equal(_track(fresh)[-1], _track(reloaded)[-1])  # weights really matter


def test_missing_corrupt_and_foreign_checkpoints(tmp_path, checkpoint):
    with pytest.raises(ModelLoadError, match='checkpoint file not found'):
        load_sam2('tiny', checkpoint=str(tmp_path / 'nope.pt'), device='cpu')
    truncated = tmp_path / 'truncated.pt'
    truncated.write_bytes(checkpoint.read_bytes()[:5000])
    with pytest.raises(ModelLoadError, match='not a readable PyTorch checkpoint'):
        load_sam2('tiny', checkpoint=str(truncated), device='cpu')
    garbage = tmp_path / 'garbage.pt'
    garbage.write_bytes(os.urandom(4096))
    with pytest.raises(ModelLoadError, match='not a readable PyTorch checkpoint'):
        load_sam2('tiny', checkpoint=str(garbage), device='cpu')
    no_model = tmp_path / 'no_model.pt'
    torch.save({'weights': {}}, no_model)
    with pytest.raises(ModelLoadError, match="expected a dict with a 'model' state dict"):
        load_sam2('tiny', checkpoint=str(no_model), device='cpu')


def test_checkpoint_of_another_size_is_a_mismatch(checkpoint):
    with pytest.raises(ModelLoadError, match='does not match the SAM 2.1 small architecture'):
        load_sam2('small', checkpoint=str(checkpoint), device='cpu', image_size=IMAGE_SIZE)


def test_bad_options_fail_fast(monkeypatch):
    with pytest.raises(ModelLoadError, match="unknown SAM 2 size 'huge'"):
        load_sam2('huge', untrained=True)
    with pytest.raises(ModelLoadError, match='multiple of 64 between 256 and 1024'):
        load_sam2('tiny', untrained=True, device='cpu', image_size=300)
    with pytest.raises(ModelLoadError, match="unknown precision 'fp8'"):
        load_sam2('tiny', untrained=True, device='cpu', precision='fp8')
    with pytest.raises(ModelLoadError, match="unknown device 'tpu'"):
        load_sam2('tiny', untrained=True, device='tpu')
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    with pytest.raises(ModelLoadError, match='CUDA is not available'):
        load_sam2('tiny', untrained=True, device='cuda')
    assert sam2_model.resolve_device('auto') == torch.device('cpu')
    monkeypatch.setattr(sam2_model, 'cpu_has_native_bf16', lambda: False)
    assert sam2_model.resolve_precision('auto', torch.device('cpu')) == torch.float32


_DOWNLOAD = (
    'from sam2_ros.models.sam2_model import load_sam2, ModelLoadError\n'
    'try:\n'
    "    load_sam2('tiny', device='cpu')\n"
    'except ModelLoadError as error:\n'
    '    print(error)\n'
)


@pytest.mark.parametrize(
    ('env', 'reason'),
    [
        ({'HF_HUB_OFFLINE': '1'}, 'is not in the Hugging Face cache and HF_HUB_OFFLINE is set'),
        # a Hub endpoint on a closed loopback port: the connection is refused at once
        (
            {'HF_ENDPOINT': 'http://127.0.0.1:9'},
            'could not download sam2.1_hiera_tiny.pt from the Hugging Face Hub '
            '(facebook/sam2.1-hiera-tiny): 127.0.0.1:9 cannot be reached (Connection refused)',
        ),
    ],
    ids=['offline', 'unreachable'],
)
def test_impossible_download_is_a_clear_error(tmp_path, env, reason):
    result = subprocess.run(
        [sys.executable, '-c', _DOWNLOAD],
        env={**os.environ, 'HF_HOME': str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert 'pass its path as the checkpoint' in result.stdout
    # Said at once: huggingface_hub's retries (about 25 s) are not waited through.
    assert 'Retrying in' not in result.stderr, result.stderr
    assert reason in result.stdout, result.stdout


def test_fp32_on_cpu_needs_no_autocast(untrained):
    assert untrained.dtype == torch.float32
    with untrained.autocast():
        assert not torch.is_autocast_enabled()
    assert np.isfinite(_track(untrained)[-1].numpy()).all()
