"""The streaming SAM 2 tracker on the real (untrained) SAM 2.1 tiny model."""

import numpy as np
import pytest
import torch
from tracker_fixtures import IMAGE_SIZE, moving_frames

from sam2_ros.core.prompts import FrameError, PromptError
from sam2_ros.models.sam2_model import load_sam2
from sam2_ros.models.streaming_tracker import StreamingTracker, UnknownObjectError


@pytest.fixture(scope='module')
def loaded():
    # fp32: batched and single-object steps are compared to 1e-4, which bf16's rounding (auto
    # on a CPU with native bf16) does not hold; test_precision.py covers the bf16 path.
    return load_sam2(
        'tiny', untrained=True, device='cpu', precision='fp32', image_size=IMAGE_SIZE, seed=0
    )


@pytest.fixture
def tracker(loaded):
    return StreamingTracker(loaded, max_reanchors=2)


def test_objects_added_at_start_and_mid_stream_keep_their_ids(tracker):
    frames = moving_frames(8)
    tracker.step(frames[0])
    first = tracker.add_object(points=[[35, 45]], labels=[1])
    assert first.obj_id == 1 and first.is_conditioning
    assert first.mask.shape == (120, 160) and first.mask.dtype == np.bool_
    assert len(first.candidates) == 3 and len(first.candidate_scores) == 3
    assert first.score == pytest.approx(max(first.candidate_scores))
    for frame in frames[1:4]:
        assert set(tracker.step(frame).objects) == {1}
    second = tracker.add_object(box=[10, 10, 80, 90], obj_id=7)
    assert second.obj_id == 7 and second.candidates == []  # a box gives one mask
    third = tracker.add_object(points=[[100, 20], [110, 30]], labels=[1, 0])
    assert third.obj_id == 8
    for frame in frames[4:]:
        result = tracker.step(frame)
        assert set(result.objects) == {1, 7, 8}
        for obj_id, obj in result.objects.items():
            assert obj.obj_id == obj_id and not obj.is_conditioning
            assert 0.0 <= obj.visibility <= 1.0
    assert tracker.object_ids == [1, 7, 8]
    assert tracker.step_index == 7


def test_remove_and_reset_free_state(tracker):
    frames = moving_frames(4)
    tracker.step(frames[0])
    tracker.add_object(points=[[35, 45]], labels=[1])
    tracker.add_object(box=[60, 20, 120, 90])
    for frame in frames[1:]:
        tracker.step(frame)
    with_two = tracker.retained_state()
    tracker.remove(1)
    with_one = tracker.retained_state()
    assert with_one.objects == 1 and with_one.bytes < with_two.bytes
    assert set(tracker.step(frames[0]).objects) == {2}
    tracker.reset()
    empty = tracker.retained_state()
    assert (empty.objects, empty.tensors, empty.bytes) == (0, 0, 0)
    assert tracker.step_index == -1 and tracker.object_ids == []
    with pytest.raises(FrameError, match='no frame yet'):
        tracker.add_object(points=[[1, 1]], labels=[1])
    tracker.step(frames[1])
    assert tracker.add_object(points=[[35, 45]], labels=[1]).obj_id == 1


@pytest.mark.slow
def test_retained_state_stops_growing_over_110_steps(tracker):
    frames = moving_frames(10)
    tracker.step(frames[0])
    tracker.add_object(points=[[35, 45]], labels=[1])
    reports = []
    for i in range(1, 111):
        tracker.step(frames[i % 10])
        if i == 3:
            tracker.add_object(box=[60, 20, 120, 90])  # mid-stream
        if i in (5, 9, 13, 17):  # more re-anchors than the K=2 kept
            tracker.reanchor(2, box=[55, 25, 125, 95], drop_since_step=i - 1)
        if i == 20:
            tracker.refine(1, points=[[40, 50]], labels=[1])
        reports.append(tracker.retained_state())
    warm = reports[40:]
    assert len({(r.tensors, r.bytes) for r in warm}) == 1, warm[0]
    final = reports[-1]
    # per object: anchor + K=2 recent conditioning frames; memory for num_maskmem steps;
    # pointers for max_obj_ptrs_in_encoder steps
    assert final.conditioning_frames == 2 + 3  # object 1: anchor + refine; object 2: 1 + K
    assert final.memory_frames == 2 * 7
    assert final.pointer_frames == 2 * 16


def test_reanchor_makes_a_conditioning_frame_and_drops_polluted_memory(tracker):
    frames = moving_frames(12)
    tracker.step(frames[0])
    tracker.add_object(points=[[35, 45]], labels=[1])
    for frame in frames[1:10]:
        tracker.step(frame)
    state = tracker._objects[1]
    assert set(state.non_cond) >= {6, 7, 8, 9}
    result = tracker.reanchor(1, box=[30, 30, 80, 90], drop_since_step=7)
    assert result.is_conditioning and result.candidates == []
    assert sorted(state.cond) == [0, 9]
    assert max(state.non_cond) == 6
    assert set(tracker.step(frames[10]).objects) == {1}


def _snapshot(tracker):
    objects = {
        obj_id: (sorted(state.cond), sorted(state.non_cond), state.current_step)
        for obj_id, state in tracker._objects.items()
    }
    return tracker.step_index, tracker.object_ids, tracker.retained_state(), objects


BAD_PROMPTS = [
    (dict(points=[[float('nan'), 3]], labels=[1]), PromptError, r'points\[0, 0\] is nan'),
    (dict(points=[[3, float('inf')]], labels=[1]), PromptError, r'points\[0, 1\] is inf'),
    (dict(points=[[170, 3]], labels=[1]), PromptError, r'point 0 \(170, 3\) lies outside'),
    (dict(points=[[-1, 3]], labels=[1]), PromptError, 'lies outside the 160x120 image'),
    (dict(points=[], labels=[]), PromptError, 'empty prompt'),
    (dict(points=[[3, 3]], labels=[2]), PromptError, 'label 0 is 2'),
    (dict(points=[[3, 3]], labels=[1, 0]), PromptError, '1 points but 2 labels'),
    (dict(box=[50, 10, 20, 40]), PromptError, 'empty or inverted'),
    (dict(box=[10, 10, 10, 40]), PromptError, 'empty or inverted'),
    (dict(box=[10, 10, 200, 40]), PromptError, 'extends outside'),
    (dict(box=[10, float('nan'), 20, 40]), PromptError, r'box\[1\] is nan'),
    (dict(box=[1, 2, 3]), PromptError, 'got 3 values'),
    (dict(mask=np.ones((60, 80), bool)), PromptError, r'mask has shape \(60, 80\)'),
    (dict(mask=np.zeros((120, 160), bool)), PromptError, 'mask is empty'),
    (dict(mask=np.full((120, 160), 3, np.uint8)), PromptError, 'boolean or integer 0/1'),
]


@pytest.mark.parametrize('kwargs, error, message', BAD_PROMPTS)
def test_bad_prompts_raise_and_leave_state_untouched(tracker, kwargs, error, message):
    frames = moving_frames(3)
    tracker.step(frames[0])
    tracker.add_object(points=[[35, 45]], labels=[1])
    tracker.step(frames[1])
    before = _snapshot(tracker)
    with pytest.raises(error, match=message):
        tracker.add_object(**kwargs)
    with pytest.raises(error, match=message):
        tracker.refine(1, **kwargs)
    assert _snapshot(tracker) == before
    assert set(tracker.step(frames[2]).objects) == {1}


def test_unknown_ids_and_bad_frames_raise_and_leave_state_untouched(tracker):
    frames = moving_frames(2)
    tracker.step(frames[0])
    tracker.add_object(points=[[35, 45]], labels=[1])
    before = _snapshot(tracker)
    for call in (
        lambda: tracker.refine(5, points=[[1, 1]], labels=[1]),
        lambda: tracker.reanchor(5, box=[1, 1, 9, 9]),
        lambda: tracker.remove(5),
    ):
        with pytest.raises(UnknownObjectError, match=r'unknown object id 5; tracked ids: \[1\]'):
            call()
    with pytest.raises(PromptError, match='already exists'):
        tracker.add_object(points=[[1, 1]], labels=[1], obj_id=1)
    with pytest.raises(PromptError, match='positive integer'):
        tracker.add_object(points=[[1, 1]], labels=[1], obj_id=0)
    with pytest.raises(PromptError, match='after the current step'):
        tracker.reanchor(1, box=[1, 1, 9, 9], drop_since_step=99)
    bad_frames = [
        (frames[1].astype(np.float32), 'dtype must be uint8'),
        (frames[1][..., :2], r'shape \(height, width, 3\)'),
        (frames[1][..., 0], r'shape \(height, width, 3\)'),
        (np.zeros((0, 5, 3), np.uint8), 'zero size'),
        ([[1, 2, 3]], 'numpy array'),
    ]
    for frame, message in bad_frames:
        with pytest.raises(FrameError, match=message):
            tracker.step(frame)
    assert _snapshot(tracker) == before


def test_batched_objects_match_objects_tracked_alone(loaded):
    frames = moving_frames(6)
    prompts = [dict(points=[[35, 45]], labels=[1]), dict(box=[60, 20, 120, 90])]
    together = StreamingTracker(loaded)
    together.step(frames[0])
    for prompt in prompts:
        together.add_object(**prompt)
    batched = [together.step(frame) for frame in frames[1:]]
    for index, prompt in enumerate(prompts, start=1):
        alone = StreamingTracker(loaded)
        alone.step(frames[0])
        alone.add_object(obj_id=index, **prompt)
        for step_result, frame in zip(batched, frames[1:], strict=True):
            single = alone.step(frame).objects[index]
            torch.testing.assert_close(
                step_result.objects[index].logits, single.logits, atol=1e-4, rtol=1e-4
            )


def test_refinement_clicks_accumulate_on_the_current_step(tracker):
    frames = moving_frames(3)
    tracker.step(frames[0])
    tracker.add_object(points=[[35, 45]], labels=[1])
    tracker.step(frames[1])
    tracker.refine(1, points=[[40, 50]], labels=[1])
    tracker.refine(1, points=[[90, 90]], labels=[0])
    state = tracker._objects[1]
    assert state.point_inputs['point_labels'].tolist() == [[1, 0]]
    assert sorted(state.cond) == [0, 1] and 1 not in state.non_cond
    tracker.refine(1, points=[[42, 52]], labels=[1], clear_old=True)
    assert state.point_inputs['point_labels'].tolist() == [[1]]
    tracker.step(frames[2])
    assert state.point_inputs is None
