"""Per-component precision, `precision: auto` on a CPU, and the thread settings."""

import cv2
import numpy as np
import pytest
import torch
from tracker_fixtures import IMAGE_SIZE

from sam2_ros.models import precision, sam2_model, threads
from sam2_ros.models.catalog import COMPONENTS, PrecisionError
from sam2_ros.models.precision import COMPONENT_MODULES, parse_components
from sam2_ros.models.sam2_model import ModelLoadError, load_sam2
from sam2_ros.models.streaming_tracker import StreamingTracker
from sam2_ros.tracker.parameters import check_values


def test_parse_components_fills_fp32_and_names_errors():
    assert tuple(COMPONENT_MODULES) == COMPONENTS  # the torch-free list and the modules agree
    parsed = parse_components('image_encoder=bf16, mask_decoder=fp16')
    assert parsed == {
        'image_encoder': torch.bfloat16,
        'memory_attention': torch.float32,
        'mask_decoder': torch.float16,
        'memory_encoder': torch.float32,
    }
    with pytest.raises(PrecisionError, match="unknown SAM 2 component 'decoder'"):
        parse_components('decoder=bf16')
    with pytest.raises(PrecisionError, match="unknown dtype 'int8'"):
        parse_components('image_encoder=int8')
    with pytest.raises(PrecisionError, match='not component=dtype'):
        parse_components('image_encoder')


def test_cpu_flags_decide_native_bf16(tmp_path):
    cpuinfo = tmp_path / 'cpuinfo'
    cpuinfo.write_text('processor : 0\nflags : fpu sse avx512f avx512_bf16\n')
    assert precision.cpu_has_native_bf16(precision.cpu_flags(str(cpuinfo)))
    cpuinfo.write_text('processor : 0\nflags : fpu sse avx2\n')
    assert not precision.cpu_has_native_bf16(precision.cpu_flags(str(cpuinfo)))
    assert precision.cpu_has_native_bf16({'amx_bf16'})
    assert precision.cpu_flags(str(tmp_path / 'missing')) == set()


@pytest.mark.parametrize('native', [True, False])
def test_auto_on_cpu_follows_native_bf16(monkeypatch, native):
    monkeypatch.setattr(sam2_model, 'cpu_has_native_bf16', lambda: native)
    components = sam2_model.resolve_components('auto', torch.device('cpu'))
    expected = torch.bfloat16 if native else torch.float32
    assert components == dict.fromkeys(precision.COMPONENTS, expected)
    assert sam2_model.resolve_precision('auto', torch.device('cpu')) == expected


def test_cpu_accepts_bf16_and_rejects_bad_settings():
    cpu = torch.device('cpu')
    assert sam2_model.resolve_precision('bf16', cpu) == torch.bfloat16
    assert sam2_model.resolve_precision('fp32', cpu) == torch.float32
    # Mixed settings run without whole-model autocast.
    assert sam2_model.resolve_precision('image_encoder=bf16', cpu) == torch.float32
    with pytest.raises(ModelLoadError, match="unknown SAM 2 component 'encoder'"):
        sam2_model.resolve_components('encoder=bf16', cpu)
    with pytest.raises(ModelLoadError, match="unknown precision 'fp8'"):
        sam2_model.resolve_components('fp8', cpu)


def _frame(seed=0):
    return np.random.default_rng(seed).integers(0, 256, (120, 160, 3), dtype=np.uint8)


def test_components_run_in_their_own_dtype():
    loaded = load_sam2(
        'tiny',
        untrained=True,
        device='cpu',
        precision='image_encoder=bf16,mask_decoder=bf16',
        image_size=IMAGE_SIZE,
    )
    assert loaded.dtype == torch.float32 and loaded.components is not None
    assert 'image_encoder=bf16,memory_attention=fp32' in loaded.describe()
    seen = {}

    def record(name):
        def hook(_module, args, kwargs):
            seen[name] = (torch.is_autocast_enabled('cpu'), torch.get_autocast_dtype('cpu'))
            tensors = [v for v in (*args, *kwargs.values()) if isinstance(v, torch.Tensor)]
            seen[name + '_input'] = tensors[0].dtype

        return hook

    model = loaded.model
    model.image_encoder.trunk.register_forward_pre_hook(record('encoder'), with_kwargs=True)
    model.memory_attention.layers[0].register_forward_pre_hook(
        record('attention'), with_kwargs=True
    )
    outputs = {}

    def record_output(_module, _args, out):
        outputs['fpn'] = out['backbone_fpn'][0].dtype

    model.image_encoder.register_forward_hook(record_output)
    tracker = StreamingTracker(loaded)
    tracker.step(_frame())
    first = tracker.add_object(box=[40, 30, 100, 90])
    result = tracker.step(_frame(1)).objects[first.obj_id]
    assert seen['encoder'][:2] == (True, torch.bfloat16)
    assert seen['attention'][0] is False and seen['attention_input'] == torch.float32
    assert outputs['fpn'] == torch.float32  # islands hand fp32 back to the glue code
    assert result.mask.shape == (120, 160) and result.logits.dtype == torch.float32


def test_fp16_on_cpu_tracks_with_fp16_memory():
    loaded = load_sam2('tiny', untrained=True, device='cpu', precision='fp16', image_size=256)
    tracker = StreamingTracker(loaded)
    tracker.step(_frame())
    obj = tracker.add_object(box=[40, 30, 100, 90])
    result = tracker.step(_frame(1)).objects[obj.obj_id]  # bf16 memory failed in fp16 autocast
    assert result.mask.shape == (120, 160)
    assert tracker._objects[obj.obj_id].non_cond[1]['maskmem_features'].dtype == torch.float16


def test_thread_parameters_resolve_and_apply():
    assert threads.resolve_threads(0, 0, cores=8) == (8, 1)
    assert threads.resolve_threads(3, 2, cores=8) == (3, 2)
    with pytest.raises(ValueError, match='torch_threads must be an integer >= 0'):
        threads.resolve_threads(-1, 0, cores=8)
    before = (torch.get_num_threads(), cv2.getNumThreads())
    try:
        assert threads.apply_threads(1, 1) == (1, 1)
        assert torch.get_num_threads() == 1 and cv2.getNumThreads() == 1
    finally:
        torch.set_num_threads(before[0])
        cv2.setNumThreads(before[1])


def test_node_parameters_check_component_precision():
    assert check_values({'component_precision': 'image_encoder=bf16'}) == []
    problems = check_values({'component_precision': 'image_encoder=half'})
    assert problems and "unknown dtype 'half'" in problems[0]
    assert check_values({'torch_threads': -1})
