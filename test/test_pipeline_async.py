"""SAM 2 off the frame path: the asynchronous and fixed-delay keyframe modes of the pipeline.

The oracle segmenter returns ground truth for the frame it is given, so where a mask comes
from (SAM 2's frame k, carried to the present, or not) shows in its overlap with the truth.
A gated segmenter holds SAM 2's step until the test lets it go, so "the frame path does not
wait for SAM 2" is checked by order of events, not by timing.
"""

import threading
import time

import numpy as np
import pytest

from sam2_ros.core.keyframes import KeyframeConfig
from sam2_ros.core.pipeline import PipelineConfig, TrackingPipeline
from sam2_ros.core.prompts import PromptError
from sam2_ros.core.tracking_types import TrackState
from sam2_ros.evaluation import synthetic
from sam2_ros.evaluation.metrics import evaluate_sequence, mask_iou
from sam2_ros.evaluation.oracles import DriftEvent, OracleDetector, OracleSegmenter

W, H = 320, 240


@pytest.fixture(scope='module')
def moderate():
    return synthetic.scenario('moderate_motion', 40, width=W, height=H)


class GatedSegmenter(OracleSegmenter):
    """The oracle, whose `step` waits for `release()` while the gate is closed."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.open = threading.Event()
        self.open.set()
        self.entered = threading.Event()

    def close_gate(self) -> None:
        self.open.clear()
        self.entered.clear()

    def step(self, frame):
        self.entered.set()
        assert self.open.wait(30), 'the test never released SAM 2'
        return super().step(frame)


def _pipeline(sequence, mode, delay=1, interval=5, segmenter=None, drift=()):
    segmenter = segmenter or OracleSegmenter(sequence, drift_events=drift)
    config = PipelineConfig(
        keyframes=KeyframeConfig(interval=interval), mode=mode, keyframe_delay_frames=delay
    )
    return TrackingPipeline(segmenter, OracleDetector(sequence, box_noise_px=1.0), config)


def _prompt(pipeline, box):
    """Prompt and wait for it, as the node's worker does (polling while no frame comes)."""
    future = pipeline.submit_prompt(box=box)
    while not future.done():
        pipeline.poll()
        time.sleep(0.002)
    return future.result()


def _run(sequence, pipeline, gt_ids=(1, 2, 3), frames=None):
    results = []
    for i, frame in enumerate(sequence.frames[:frames]):
        results.append(pipeline.process(frame, stamp=i))
        if i == 0:
            for gt_id in gt_ids:
                _prompt(pipeline, sequence.truth[0][gt_id].box)
    pipeline.close()
    return results


def _masks(results):
    return [{o.obj_id: o.mask for o in r.objects} for r in results]


def test_fixed_delay_merges_each_keyframe_exactly_delay_frames_later_and_repeats(moderate):
    runs = [_run(moderate, _pipeline(moderate, 'fixed_delay', delay=3)) for _ in range(2)]
    first, second = runs
    started = [r.frame_index for r in first if r.is_keyframe]
    merged = {r.merged_keyframe: r.frame_index for r in first if r.merged_keyframe is not None}
    assert started[:3] == [5, 10, 15]  # the prompts on frame 0 come after its result
    assert all(merged[k] == k + 3 for k in started[:-1])
    for a, b in zip(first, second, strict=True):
        assert (a.is_keyframe, a.merged_keyframe, a.events) == (
            b.is_keyframe,
            b.merged_keyframe,
            b.events,
        )
        assert [(o.obj_id, o.state, o.frames_since_keyframe) for o in a.objects] == [
            (o.obj_id, o.state, o.frames_since_keyframe) for o in b.objects
        ]
        for x, y in zip(a.objects, b.objects, strict=True):
            assert np.array_equal(x.mask, y.mask)


def test_a_keyframe_result_is_carried_to_the_frame_it_lands_on(moderate):
    results = _run(moderate, _pipeline(moderate, 'fixed_delay', delay=8, interval=10))
    landed = next(r for r in results if r.merged_keyframe == 10)
    assert landed.frame_index == 18
    for obj in landed.objects:
        assert obj.state == TrackState.TRACKING and obj.frames_since_keyframe == 8
        then, now = moderate.truth[10][obj.obj_id].mask, moderate.truth[18][obj.obj_id].mask
        assert mask_iou(then, now) < 0.8  # the object moved between frames 10 and 15
        assert mask_iou(obj.mask, now) > 0.9  # and its mask is where it is now
        assert mask_iou(obj.mask, now) > mask_iou(obj.mask, then) + 0.1
    assert all(o.state == TrackState.PROPAGATED for o in results[19].objects)


def test_the_frame_path_answers_every_frame_while_sam2_works(moderate):
    segmenter = GatedSegmenter(moderate)
    pipeline = _pipeline(moderate, 'async', segmenter=segmenter)
    results = [pipeline.process(moderate.frames[0], stamp=0)]
    for gt_id in (1, 2):
        _prompt(pipeline, moderate.truth[0][gt_id].box)
    segmenter.close_gate()
    for i in range(1, 12):  # SAM 2 is held from the keyframe on frame 5 on
        results.append(pipeline.process(moderate.frames[i], stamp=i))
    assert segmenter.entered.is_set() and pipeline.sam2_busy
    assert [r.frame_index for r in results if r.is_keyframe] == [5]  # never queued behind itself
    assert all(len(r.objects) == 2 for r in results[1:])  # results[0] came before the prompts
    assert all(o.state == TrackState.PROPAGATED for r in results[1:] for o in r.objects)
    assert results[-1].objects[0].frames_since_keyframe == 11  # the age of SAM 2's evidence
    segmenter.open.set()
    assert pipeline.drain(10)
    results.append(pipeline.process(moderate.frames[12], stamp=12))
    assert results[-1].is_keyframe  # 7 frames since the last keyframe: the interval is met
    pipeline.close()
    ages = [o.frames_since_keyframe for o in results[-1].objects]
    assert ages == [7, 7]  # frame 5's result, merged on frame 11 (drain), carried to 12


def test_drift_is_reanchored_under_the_same_id_asynchronously(moderate):
    pipeline = _pipeline(
        moderate, 'fixed_delay', delay=2, drift=(DriftEvent(12, 2, 'other_object'),)
    )
    results = _run(moderate, pipeline)
    landed = next(r for r in results if r.merged_keyframe == 15)
    assert landed.frame_index == 17
    assert 'drift 2 (low_iou_with_flow)' in landed.events and 'reanchored 2' in landed.events
    obj = next(o for o in landed.objects if o.obj_id == 2)
    assert obj.state == TrackState.REANCHORED and obj.reanchor_count == 1
    scores = evaluate_sequence(moderate.truth, _masks(results), {1: 1, 2: 2, 3: 3})
    assert scores.id_switches == 0
    assert min(scores.objects[2].j_per_frame[18:]) > 0.8  # it follows object 2 again


def test_removing_or_resetting_while_sam2_works_discards_its_result(moderate):
    segmenter = GatedSegmenter(moderate)
    pipeline = _pipeline(moderate, 'async', segmenter=segmenter)
    pipeline.process(moderate.frames[0], stamp=0)
    for gt_id in (1, 2, 3):
        _prompt(pipeline, moderate.truth[0][gt_id].box)
    for i in range(1, 5):
        pipeline.process(moderate.frames[i], stamp=i)
    segmenter.close_gate()
    assert pipeline.process(moderate.frames[5], stamp=5).is_keyframe
    assert segmenter.entered.wait(10)
    pipeline.remove(2)
    assert segmenter.count('remove') == 0  # waits for SAM 2's step
    segmenter.open.set()
    assert pipeline.drain(10)
    assert segmenter.count('remove') == 1
    result = pipeline.process(moderate.frames[6], stamp=6)
    assert [o.obj_id for o in result.objects] == [1, 3]
    assert all(o.frames_since_keyframe == 1 for o in result.objects)  # 5's result merged

    segmenter.close_gate()
    for i in range(7, 11):
        pipeline.process(moderate.frames[i], stamp=i)
    assert pipeline.sam2_busy
    assert pipeline.reset() == 2
    segmenter.open.set()
    assert pipeline.drain(10)
    assert pipeline.stats.sam2_discarded == 1
    result = pipeline.process(moderate.frames[11], stamp=11)
    assert result.objects == [] and segmenter.object_ids == []
    outcome = _prompt(pipeline, moderate.truth[11][1].box)
    assert pipeline.process(moderate.frames[12], stamp=12).objects[0].obj_id == outcome.obj.obj_id
    pipeline.close()


def test_a_prompt_waits_for_sam2_then_lands_carried_on_the_present_frame(moderate):
    segmenter = GatedSegmenter(moderate)
    pipeline = _pipeline(moderate, 'async', segmenter=segmenter)
    pipeline.process(moderate.frames[0], stamp=0)
    _prompt(pipeline, moderate.truth[0][1].box)
    for i in range(1, 5):
        pipeline.process(moderate.frames[i], stamp=i)
    segmenter.close_gate()
    pipeline.process(moderate.frames[5], stamp=5)  # a keyframe, held
    future = pipeline.submit_prompt(box=moderate.truth[5][2].box, source_index=5)
    for i in range(6, 9):
        pipeline.process(moderate.frames[i], stamp=i)
    assert not future.done()  # SAM 2 is busy: the prompt waits, it is not queued behind
    segmenter.open.set()
    while not future.done():
        pipeline.poll()
        time.sleep(0.002)
    outcome = future.result()
    assert outcome.carried is not None and outcome.carried.frames == 3  # 5 -> 8
    result = pipeline.process(moderate.frames[9], stamp=9)
    obj = next(o for o in result.objects if o.obj_id == outcome.obj.obj_id)
    assert mask_iou(obj.mask, moderate.truth[9][2].mask) > 0.85
    pipeline.close()


def test_a_prompt_on_a_frame_no_longer_buffered_is_refused(moderate):
    config = PipelineConfig(mode='async', frame_history=3)
    pipeline = TrackingPipeline(OracleSegmenter(moderate), None, config)
    for i in range(6):
        pipeline.process(moderate.frames[i], stamp=i)
    future = pipeline.submit_prompt(box=moderate.truth[0][1].box, source_index=0)
    with pytest.raises(PromptError, match='no longer buffered'):
        future.result(10)
    pipeline.close()


@pytest.mark.parametrize('delay', [2, 5])
def test_fixed_delay_costs_little_accuracy_against_sync(moderate, delay):
    sync = evaluate_sequence(moderate.truth, _masks(_run(moderate, _pipeline(moderate, 'sync'))))
    late = _run(moderate, _pipeline(moderate, 'fixed_delay', delay=delay))
    delayed = evaluate_sequence(moderate.truth, _masks(late))
    assert delayed.id_switches == 0
    assert delayed.j > sync.j - 0.02  # the bound at d = 5: at most 2 J points
