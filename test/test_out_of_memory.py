"""Out of memory during SAM 2 is an answer: the step is undone, flow goes on, the node degrades.

Out-of-memory errors are injected, never provoked: the tracker's fault hook raises the real
exception types (`MemoryError`, and `torch.cuda.OutOfMemoryError`, which CPU-only torch can
construct) just before one of the model's modules runs, so a step fails half-way as a real
allocation failure would. Twins (the same untrained SAM 2.1 tiny weights, seed 0) show that a
step after a failure equals the step of a run that never failed.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import pytest
import torch
from tracker_fixtures import IMAGE_SIZE, moving_frames

from sam2_ros.core.keyframe_stage import NewObjectRefusedError
from sam2_ros.core.keyframes import KeyframeConfig
from sam2_ros.core.memory import (
    LOWER_RATE,
    NORMAL,
    REFUSE_NEW,
    SMALLER_GROUPS,
    Sam2OutOfMemoryError,
    is_out_of_memory,
)
from sam2_ros.core.pipeline import MEMORY_BACKOFF, PipelineConfig, TrackingPipeline
from sam2_ros.core.tracking_types import TrackState
from sam2_ros.evaluation import synthetic
from sam2_ros.evaluation.oracles import DriftEvent, OracleDetector, OracleSegmenter
from sam2_ros.models.sam2_model import ModelLoadError, load_sam2
from sam2_ros.models.streaming_tracker import StreamingTracker, check_step_fits

FRAMES = moving_frames(12)  # 160x120, a textured square moving
BOXES = ([20, 30, 50, 60], [90, 50, 130, 90], [40, 70, 80, 110])
ERRORS = (MemoryError, torch.cuda.OutOfMemoryError)


def _oom(error_type):
    return error_type('CUDA out of memory. Tried to allocate 2.00 GiB (injected by the test)')


def _model():
    # fp32: grouped and whole batches agree to 1e-4 there (bf16 rounding depends on the batch)
    return load_sam2(
        'tiny', untrained=True, device='cpu', precision='fp32', image_size=IMAGE_SIZE, seed=0
    )


@pytest.fixture(scope='module')
def models():
    return _model(), _model()  # twins: the same untrained weights


def fail_at(operation: str, module: str, error_type, times: int = 1):
    """Return a fault hook: `error_type` the next `times` times `module` runs in `operation`."""
    left = [times]

    def hook(op: str, name: str) -> None:
        if (op, name) == (operation, module) and left[0] > 0:
            left[0] -= 1
            raise _oom(error_type)

    return hook


def tracker_state(tracker: StreamingTracker):
    """Return what the tracker keeps, comparable: ids, steps, stored tensors by identity."""
    objects = {}
    for obj_id, state in tracker._objects.items():
        objects[obj_id] = (
            {s: {k: id(v) for k, v in out.items()} for s, out in state.cond.items()},
            {s: {k: id(v) for k, v in out.items()} for s, out in state.non_cond.items()},
            state.anchor_step,
            state.current_step,
        )
    return tracker.step_index, tracker.object_ids, tracker.retained_state(), objects


def _started(loaded, objects=2) -> StreamingTracker:
    tracker = StreamingTracker(loaded)
    tracker.step(FRAMES[0])
    for box in BOXES[:objects]:
        tracker.add_object(box=box)
    tracker.step(FRAMES[1])
    return tracker


def _same_results(a, b) -> None:
    assert sorted(a.objects) == sorted(b.objects)
    for obj_id, out in a.objects.items():
        assert np.array_equal(out.mask, b.objects[obj_id].mask)
        assert torch.equal(out.logits, b.objects[obj_id].logits)


def test_out_of_memory_errors_are_recognised_by_type():
    assert is_out_of_memory(MemoryError())
    assert is_out_of_memory(torch.cuda.OutOfMemoryError('CUDA out of memory.'))
    assert isinstance(torch.cuda.OutOfMemoryError('x'), RuntimeError)
    assert is_out_of_memory(RuntimeError('CUDA error: out of memory'))
    assert not is_out_of_memory(RuntimeError('shape mismatch'))
    assert not is_out_of_memory(ValueError('out of memory'))


@pytest.mark.parametrize('module', ['image_encoder', 'memory_attention', 'sam_mask_decoder'])
@pytest.mark.parametrize('error_type', ERRORS)
def test_a_failed_step_leaves_the_tracker_as_it_was_and_the_retry_equals_a_twin(
    models, module, error_type
):
    failing, twin = _started(models[0]), _started(models[1])
    before = tracker_state(failing)
    failing.fault_hook = fail_at('step', module, error_type)
    with pytest.raises(error_type):
        failing.step(FRAMES[2])
    assert tracker_state(failing) == before
    _same_results(failing.step(FRAMES[2]), twin.step(FRAMES[2]))
    _same_results(failing.step(FRAMES[3]), twin.step(FRAMES[3]))


@pytest.mark.parametrize('error_type', ERRORS)
def test_a_failed_prompt_changes_nothing_and_the_retry_equals_a_twin(models, error_type):
    failing, twin = _started(models[0]), _started(models[1])
    before = tracker_state(failing)
    failing.fault_hook = fail_at('prompt', 'sam_mask_decoder', error_type)
    with pytest.raises(error_type):
        failing.add_object(box=BOXES[2])
    assert tracker_state(failing) == before
    failing.fault_hook = fail_at('prompt', 'memory_encoder', error_type)
    with pytest.raises(error_type):
        failing.refine(1, points=[[30, 40]], labels=[1])
    assert tracker_state(failing) == before
    a, b = failing.add_object(box=BOXES[2]), twin.add_object(box=BOXES[2])
    assert a.obj_id == b.obj_id == 3 and np.array_equal(a.mask, b.mask)
    _same_results(failing.step(FRAMES[2]), twin.step(FRAMES[2]))


def test_objects_in_smaller_groups_give_the_same_masks(models):
    grouped, whole = _started(models[0], 3), _started(models[1], 3)
    grouped.max_group_size = 1
    calls = []
    grouped.fault_hook = lambda op, name: calls.append(name)
    a, b = grouped.step(FRAMES[2]), whole.step(FRAMES[2])
    assert calls.count('memory_attention') == 3  # one batch per object
    for obj_id, out in a.objects.items():
        assert np.array_equal(out.mask, b.objects[obj_id].mask)
        assert torch.allclose(out.logits, b.objects[obj_id].logits, atol=1e-4)


# ---------------------------------------------------------------------- the pipeline (sync)


def _pipeline(loaded, interval=3) -> TrackingPipeline:
    config = PipelineConfig(keyframes=KeyframeConfig(interval=interval), mode='sync')
    return TrackingPipeline(StreamingTracker(loaded), None, config)


def _masks(result):
    return {o.obj_id: o.mask for o in result.objects}


@pytest.mark.parametrize('error_type', ERRORS)
def test_a_keyframe_out_of_memory_is_undone_and_flow_carries_every_object(
    models, error_type, caplog
):
    failing, twin = _pipeline(models[0]), _pipeline(models[1])
    for pipeline in (failing, twin):
        pipeline.process(FRAMES[0])
        for box in BOXES[:2]:
            pipeline.add_object(box=box)
        for frame in FRAMES[1:3]:
            pipeline.process(frame)
    tracker = failing.segmenter
    before = tracker_state(tracker)
    tracks_before = {i: (t.keyframe_index, t.score) for i, t in failing._tracks.items()}
    tracker.fault_hook = fail_at('step', 'memory_attention', error_type)
    with caplog.at_level(logging.WARNING, logger='sam2_ros'):
        result = failing.process(FRAMES[3])  # an interval keyframe
    assert result.is_keyframe
    assert tracker_state(tracker) == before  # SAM 2's state as before the keyframe
    assert [o.obj_id for o in result.objects] == [1, 2]
    assert all(o.state == TrackState.PROPAGATED for o in result.objects)
    assert {i: (t.keyframe_index, t.score) for i, t in failing._tracks.items()} == tracks_before
    assert any('sam2 out of memory (the keyframe on frame 3)' in e for e in result.events)
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    message = errors[0].getMessage()
    assert 'out of memory during the keyframe on frame 3' in message
    assert '2 objects: 1, 2' in message and '160x120 frame' in message
    assert f'input {IMAGE_SIZE}px' in message and 'SAM 2.1 tiny' in message
    assert failing.memory.level == REFUSE_NEW and failing.memory.failures == 1
    with pytest.raises(NewObjectRefusedError, match='short of memory.*sam2_image_size'):
        failing.add_object(box=BOXES[2])
    assert failing.object_ids == [1, 2]
    # The next good SAM 2 step equals that of the twin, which never ran SAM 2 on frame 3.
    _same_results(tracker.step(FRAMES[4]), twin.segmenter.step(FRAMES[4]))


def test_a_prompt_out_of_memory_changes_nothing_and_later_frames_equal_a_twin(models):
    failing, twin = _pipeline(models[0]), _pipeline(models[1])
    for pipeline in (failing, twin):
        pipeline.process(FRAMES[0])
        pipeline.add_object(box=BOXES[0])
        pipeline.process(FRAMES[1])  # not a keyframe: a prompt now steps SAM 2 first
    failing.segmenter.fault_hook = fail_at(
        'prompt', 'sam_mask_decoder', torch.cuda.OutOfMemoryError
    )
    before = tracker_state(failing.segmenter)
    answer = failing.submit_prompt(box=BOXES[1])
    error = answer.exception()
    assert isinstance(error, Sam2OutOfMemoryError)
    assert 'a prompt for a new object on frame 1' in error.answer()
    assert 'Nothing was changed' in error.answer() and 'sam2_image_size' in error.answer()
    assert tracker_state(failing.segmenter) == before  # its step on frame 1 is undone too
    assert failing.object_ids == [1] and failing.stage.sam_frame_index == 0
    for frame in FRAMES[2:8]:
        a, b = failing.process(frame), twin.process(frame)
        assert a.is_keyframe == b.is_keyframe
        assert [o.obj_id for o in a.objects] == [o.obj_id for o in b.objects]
        for obj_id, mask in _masks(a).items():
            assert np.array_equal(mask, _masks(b)[obj_id])


# ---------------------------------------------------------------------- degradation


class FaultySegmenter(OracleSegmenter):
    """The oracle, raising MemoryError after it changed its state (the rollback must undo it).

    `failing`: in `step`; `failing_prompts`: in `add_object`; `failing_reanchors`: in
    `reanchor`. Records the group size each step was given.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.failing = self.failing_prompts = self.failing_reanchors = False
        self.reanchor_failures = 0
        self.groups: list[int | None] = []

    def step(self, frame):
        self.groups.append(self.max_group_size)
        result = super().step(frame)
        if self.failing:
            raise MemoryError('injected')
        return result

    def add_object(self, *args, **kwargs):
        result = super().add_object(*args, **kwargs)
        if self.failing_prompts:
            raise torch.cuda.OutOfMemoryError('CUDA out of memory (injected)')
        return result

    def reanchor(self, *args, **kwargs):
        result = super().reanchor(*args, **kwargs)
        if self.failing_reanchors:
            self.reanchor_failures += 1
            raise MemoryError('injected')
        return result

    def state(self):
        objects = {i: (o.gt_id, o.drift, o.drift_gt_id) for i, o in self._objects.items()}
        return self._step, self._index, set(self._applied), self._next_id, objects


@pytest.fixture(scope='module')
def scene():
    return synthetic.scenario('moderate_motion', 80, width=320, height=240)


def _oracle_pipeline(scene, mode='sync', interval=1, drift=(), detector=None):
    segmenter = FaultySegmenter(scene, drift_events=drift)
    config = PipelineConfig(keyframes=KeyframeConfig(interval=interval), mode=mode)
    pipeline = TrackingPipeline(segmenter, detector, config)
    return pipeline, segmenter


def test_out_of_memory_while_reanchoring_undoes_the_whole_keyframe(scene):
    detector = OracleDetector(scene, box_noise_px=1.0)
    pipeline, segmenter = _oracle_pipeline(
        scene, interval=2, drift=(DriftEvent(3, 1),), detector=detector
    )
    pipeline.process(scene.frames[0])
    for gt_id in (1, 2, 3):
        pipeline.add_object(box=scene.truth[0][gt_id].box)
    segmenter.failing_reanchors = True
    stats = pipeline.stats
    for i in range(1, 20):
        before = segmenter.state()
        counters = (stats.reanchors, stats.drift_detections, stats.lost_events)
        tracks = {
            t.obj_id: (t.drift_suspected, t.unresolved, t.last_box)
            for t in pipeline._tracks.values()
        }
        result = pipeline.process(scene.frames[i])
        if segmenter.reanchor_failures:
            break
    assert segmenter.reanchor_failures == 1  # drift found, re-anchoring ran out of memory
    assert segmenter.state() == before  # its step of this keyframe is undone too
    assert (stats.reanchors, stats.drift_detections, stats.lost_events) == counters
    assert {
        t.obj_id: (t.drift_suspected, t.unresolved, t.last_box) for t in pipeline._tracks.values()
    } == tracks
    assert [o.obj_id for o in result.objects] == [1, 2, 3]
    assert f'sam2 out of memory (the keyframe on frame {i})' in result.events
    assert not any(e.startswith(('drift', 'reanchored')) for e in result.events)
    segmenter.failing_reanchors = False
    events = []
    for frame in scene.frames[i + 1 : i + 6]:
        events += pipeline.process(frame).events
    assert 'reanchored 1' in events and stats.reanchors >= 1


def test_repeated_out_of_memory_degrades_in_order_and_recovers(scene, caplog):
    pipeline, segmenter = _oracle_pipeline(scene)
    pipeline.memory.recovery_steps = 2  # fewer frames than the default 5
    pipeline.process(scene.frames[0])
    for gt_id in (1, 2, 3):
        pipeline.add_object(box=scene.truth[0][gt_id].box)
    memory = pipeline.memory
    order = [(memory.level, memory.group_size, memory.rate_divisor)]
    with caplog.at_level(logging.INFO, logger='sam2_ros'):
        for i in range(1, 75):
            segmenter.failing = i < 18
            result = pipeline.process(scene.frames[i])
            assert [o.obj_id for o in result.objects] == [1, 2, 3]  # never an object dropped
            state = (memory.level, memory.group_size, memory.rate_divisor)
            if state != order[-1]:
                order.append(state)
            if result.keyframe_reasons == (MEMORY_BACKOFF,):
                assert memory.rate_divisor > 1
            if memory.level == NORMAL:
                break
    assert order == [
        (NORMAL, None, 1),
        (REFUSE_NEW, None, 1),  # 1. refuse new objects
        (SMALLER_GROUPS, 1, 1),  # 2. objects in smaller groups (3 // 2 = 1)
        (LOWER_RATE, 1, 2),  # 3. a lower SAM 2 rate, halved at each further failure
        (LOWER_RATE, 1, 4),
        (LOWER_RATE, 1, 8),
        (LOWER_RATE, 1, 4),  # recovery: the same steps back, two successes each
        (LOWER_RATE, 1, 2),
        (SMALLER_GROUPS, 1, 1),
        (SMALLER_GROUPS, 2, 1),
        (REFUSE_NEW, None, 1),
        (NORMAL, None, 1),
    ]
    assert segmenter.max_group_size is None
    assert memory.failures == memory.episode_failures >= 5
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1  # once per episode
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert sum('refusing new objects' in w for w in warnings) == 1
    assert sum('groups of 1' in w for w in warnings) == 1
    assert sum('rate lowered' in w for w in warnings) == 3
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert any('new objects accepted again' in m for m in infos)
    # A new episode is reported at ERROR again.
    segmenter.failing = True
    with caplog.at_level(logging.INFO, logger='sam2_ros'):
        pipeline.process(scene.frames[i + 1])
    assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 2
    assert memory.episodes == 2


def _two_failed_keyframes(scene):
    """Three objects, then two keyframes out of memory (frames 1 and 2)."""
    pipeline, segmenter = _oracle_pipeline(scene)
    pipeline.process(scene.frames[0])
    for gt_id in (1, 2, 3):
        pipeline.add_object(box=scene.truth[0][gt_id].box)
    segmenter.failing = True
    pipeline.process(scene.frames[1])
    pipeline.process(scene.frames[2])
    return pipeline, segmenter


def test_removing_objects_makes_room_and_a_reset_ends_the_episode(scene):
    pipeline, segmenter = _two_failed_keyframes(scene)
    assert pipeline.memory.level == SMALLER_GROUPS and segmenter.max_group_size == 1
    pipeline.remove(3)  # the remedy the answers suggest: new objects are accepted again
    assert not pipeline.memory.refuse_new and pipeline.memory.group_size == 1
    segmenter.failing = False
    pipeline.add_object(box=scene.truth[2][3].box)
    assert pipeline.object_ids == [1, 2, 4]
    pipeline.reset()  # nothing left to protect: back to normal at once
    assert pipeline.memory.level == NORMAL and segmenter.max_group_size is None
    assert not pipeline.memory.in_episode


def test_the_group_size_reaches_the_segmenter_on_the_next_step(scene):
    pipeline, segmenter = _two_failed_keyframes(scene)  # refuse new, then groups of 1
    segmenter.failing = False
    pipeline.process(scene.frames[3])
    assert segmenter.groups[-3:] == [None, None, 1]


def _answer(pipeline, future):
    """Wait for a prompt as the node's worker does (polling while no frame comes)."""
    while not future.done():
        pipeline.poll()
        time.sleep(0.002)
    return future.result()


def test_async_out_of_memory_on_the_sam2_thread_is_undone_and_answered(scene):
    pipeline, segmenter = _oracle_pipeline(scene, mode='async', interval=2)
    pipeline.process(scene.frames[0])
    assert _answer(pipeline, pipeline.submit_prompt(box=scene.truth[0][1].box)).obj.obj_id == 1
    before = segmenter.checkpoint()
    segmenter.failing = True
    events = []
    for i in range(1, 6):
        result = pipeline.process(scene.frames[i])
        events += result.events
        assert [o.obj_id for o in result.objects] == [1]
        pipeline.drain()
    assert any('sam2 out of memory' in e for e in events)
    assert pipeline.memory.failures >= 1 and pipeline.memory.refuse_new
    assert segmenter.step_index == before[2]  # every failed step was rolled back
    with pytest.raises(NewObjectRefusedError):
        _answer(pipeline, pipeline.submit_prompt(box=scene.truth[0][2].box))
    assert pipeline.object_ids == [1]
    pipeline.close()


def test_async_prompt_out_of_memory_is_answered_and_changes_nothing(scene):
    pipeline, segmenter = _oracle_pipeline(scene, mode='async', interval=50)
    pipeline.process(scene.frames[0])
    first = pipeline.submit_prompt(box=scene.truth[0][1].box)
    pipeline.process(scene.frames[1])
    assert _answer(pipeline, first).obj.obj_id == 1
    before = segmenter.state()
    segmenter.failing_prompts = True
    failed = pipeline.submit_prompt(box=scene.truth[0][2].box, source_index=0)
    with pytest.raises(Sam2OutOfMemoryError) as error:
        _answer(pipeline, failed)
    assert 'Nothing was changed' in error.value.answer()
    assert segmenter.state() == before and pipeline.object_ids == [1]
    assert pipeline.memory.failures == 1 and pipeline.memory.refuse_new
    result = pipeline.process(scene.frames[2])
    assert [o.obj_id for o in result.objects] == [1]
    pipeline.close()


def test_configure_refuses_a_model_whose_step_does_not_fit(models):
    tracker = StreamingTracker(models[0])
    tracker.fault_hook = fail_at('step', 'memory_attention', torch.cuda.OutOfMemoryError)
    with pytest.raises(ModelLoadError, match='one SAM 2 step with one object does not fit'):
        check_step_fits(tracker)
    assert tracker.step_index == -1 and tracker.object_ids == []
    check_step_fits(tracker)  # the fault fired once: now it fits
    assert tracker.step_index == -1 and tracker.object_ids == []


def test_configure_refuses_a_model_that_does_not_fit(monkeypatch):
    from sam2_ros.models import sam2_model

    def no_room(model, device):
        raise torch.cuda.OutOfMemoryError('CUDA out of memory. Tried to allocate 150.00 MiB')

    monkeypatch.setattr(sam2_model, '_move_to_device', no_room)
    with pytest.raises(ModelLoadError, match='does not fit in memory on cpu.*smaller sam2_model'):
        load_sam2('tiny', untrained=True, device='cpu', image_size=IMAGE_SIZE)


def test_a_gpu_memory_fraction_on_the_cpu_is_ignored_and_said_so(caplog):
    with caplog.at_level(logging.WARNING, logger='sam2_ros'):
        loaded = load_sam2(
            'tiny', untrained=True, device='cpu', image_size=IMAGE_SIZE, memory_fraction=0.1
        )
    assert loaded.memory_budget is None
    assert any('gpu_memory_fraction=0.1 is ignored' in r.getMessage() for r in caplog.records)
    with pytest.raises(ModelLoadError, match='gpu_memory_fraction must be in'):
        load_sam2('tiny', untrained=True, device='cpu', image_size=IMAGE_SIZE, memory_fraction=2)


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU')


@needs_cuda
def test_a_real_cuda_memory_fraction_too_small_is_refused_at_configure():
    """A real allocator limit (not injected): below the weights, then below one step."""
    from sam2_ros.models.sam2_model import apply_memory_fraction

    device = torch.device('cuda')
    total = torch.cuda.get_device_properties(device).total_memory
    try:
        with pytest.raises(ModelLoadError, match='for its weights alone'):
            load_sam2('tiny', untrained=True, device='cuda', memory_fraction=1e-6)
        weights = 160 * 2**20  # SAM 2.1 tiny: 149 MiB of fp32 weights and buffers
        loaded = load_sam2(
            'tiny',
            untrained=True,
            device='cuda',
            image_size=1024,
            memory_fraction=(weights + 32 * 2**20) / total,
        )
        tracker = StreamingTracker(loaded)
        with pytest.raises(ModelLoadError, match='does not fit in memory'):
            check_step_fits(tracker)
        assert tracker.step_index == -1 and tracker.object_ids == []
    finally:
        apply_memory_fraction(device, 0.0)
        torch.cuda.empty_cache()
