"""Pipeline scenarios on semi-synthetic sequences, with the oracle segmenter and detector.

The oracles return ground truth except where drift or detector misses are injected, so
these tests measure what the pipeline does around SAM 2: propagation, keyframes, drift
detection, re-anchoring, LOST and recovery, auto-tracking, removal.
"""

import pytest

from sam2_ros.core.keyframes import KeyframeConfig
from sam2_ros.core.pipeline import PipelineConfig, TrackingPipeline
from sam2_ros.core.tracking_types import TrackState
from sam2_ros.evaluation import synthetic
from sam2_ros.evaluation.metrics import evaluate_sequence
from sam2_ros.evaluation.oracles import DriftEvent, OracleDetector, OracleSegmenter

W, H = 320, 240


def _run(sequence, pipeline, prompt_ids=(1, 2, 3), on_frame=None):
    results = []
    for i, frame in enumerate(sequence.frames):
        results.append(pipeline.process(frame, stamp=i))
        if i == 0:
            for gt_id in prompt_ids:
                pipeline.add_object(box=sequence.truth[0][gt_id].box)
        if on_frame:
            on_frame(i, pipeline)
    return results


def _states(results, obj_id):
    """Return the object's state on each frame (None before it exists)."""
    return [next((o.state for o in r.objects if o.obj_id == obj_id), None) for r in results]


def _predictions(results):
    return [{o.obj_id: o.mask for o in r.objects} for r in results]


@pytest.fixture(scope='module')
def moderate():
    return synthetic.scenario('moderate_motion', 40, width=W, height=H)


def test_drift_is_detected_on_the_next_keyframe_and_reanchored_under_the_same_id(moderate):
    segmenter = OracleSegmenter(moderate, drift_events=(DriftEvent(12, 2, 'other_object'),))
    pipeline = TrackingPipeline(
        segmenter,
        OracleDetector(moderate, box_noise_px=1.0),
        PipelineConfig(keyframes=KeyframeConfig(interval=5)),
    )
    results = _run(moderate, pipeline)
    keyframes = [r.frame_index for r in results if r.is_keyframe]
    # SAM 2 ran on frame 0 for the prompts (after its result, which had no objects yet)
    assert results[0].keyframe_reasons == ('no_objects',)
    assert keyframes[:4] == [5, 10, 15, 20]
    at15 = results[15]
    assert 'drift 2 (low_iou_with_flow)' in at15.events and 'reanchored 2' in at15.events
    states = {o.obj_id: o for o in at15.objects}
    assert states[2].state == TrackState.REANCHORED and states[2].reanchor_count == 1
    assert {o.obj_id for o in results[-1].objects} == {1, 2, 3}
    scores = evaluate_sequence(moderate.truth, _predictions(results), {1: 1, 2: 2, 3: 3})
    assert scores.id_switches == 0
    assert scores.objects[2].j > 0.85
    assert min(scores.objects[2].j_per_frame[16:]) > 0.8  # it follows object 2 again
    assert pipeline.stats.drift_detections == 1 and pipeline.stats.reanchors == 1


def test_drift_without_detection_becomes_lost_then_recovers_with_the_same_id(moderate):
    segmenter = OracleSegmenter(moderate, drift_events=(DriftEvent(8, 1, 'background'),))
    detector = OracleDetector(moderate)
    detector.blind(1, 0, 24)
    config = PipelineConfig(keyframes=KeyframeConfig(interval=5), lost_after_keyframes=2)
    pipeline = TrackingPipeline(segmenter, detector, config)
    results = _run(moderate, pipeline)
    states = _states(results, 1)
    first_lost = states.index(TrackState.LOST)
    assert first_lost == 11  # drift seen on keyframe 10, unresolved on keyframe 11
    assert 'lost 1 (drift)' in results[11].events
    assert all(s == TrackState.LOST for s in states[11:25])
    assert all(r.is_keyframe and 'lost_object' in r.keyframe_reasons for r in results[12:25])
    assert states[25] == TrackState.REANCHORED and 'reanchored 1 (was lost)' in results[25].events
    assert states[26] == TrackState.PROPAGATED
    final = next(o for o in results[-1].objects if o.obj_id == 1)
    assert final.reanchor_count == 1 and final.area > 0


def test_occlusion_is_not_drift_and_the_object_comes_back_by_itself():
    sequence = synthetic.scenario('occlusion', 50, width=W, height=H)
    pipeline = TrackingPipeline(
        OracleSegmenter(sequence),
        OracleDetector(sequence),
        PipelineConfig(keyframes=KeyframeConfig(interval=3)),
    )
    results = _run(sequence, pipeline, prompt_ids=(1, 2))
    states = _states(results, 1)
    assert TrackState.LOST in states
    assert 'lost 1 (occluded)' in [e for r in results for e in r.events]
    back = max(i for i, s in enumerate(states) if s == TrackState.LOST) + 1
    assert back < len(states) and states[back] in (TrackState.TRACKING, TrackState.REANCHORED)
    scores = evaluate_sequence(sequence.truth, _predictions(results), {1: 1, 2: 2}, 0.3)
    assert scores.id_switches == 0 and scores.objects[1].j > 0.8


def test_auto_tracking_adds_configured_classes_up_to_max_objects(moderate):
    config = PipelineConfig(
        keyframes=KeyframeConfig(interval=5), auto_track_classes=('orange', 'apple'), max_objects=1
    )
    pipeline = TrackingPipeline(OracleSegmenter(moderate), OracleDetector(moderate), config)
    results = [pipeline.process(frame, stamp=i) for i, frame in enumerate(moderate.frames[:12])]
    assert results[0].is_keyframe and results[0].keyframe_reasons == ('first_frame',)
    added = results[0].objects
    assert len(added) == 1 and added[0].class_name in ('orange', 'apple')
    assert added[0].label == added[0].class_name and added[0].obj_id == 1
    assert all(len(r.objects) == 1 for r in results)  # capped by max_objects
    assert pipeline.stats.auto_added == 1


def test_prompted_objects_take_the_class_of_the_best_detection(moderate):
    pipeline = TrackingPipeline(OracleSegmenter(moderate), OracleDetector(moderate))
    pipeline.process(moderate.frames[0])
    tracked, _ = pipeline.add_object(box=moderate.truth[0][2].box)
    assert (tracked.class_id, tracked.class_name, tracked.label) == (1, 'apple', 'apple')
    named, _ = pipeline.add_object(box=moderate.truth[0][1].box, label='breakfast')
    assert named.label == 'breakfast' and named.class_name == 'orange'


def test_removal_mid_stream_keeps_the_other_ids(moderate):
    def remove_at_10(i, pipeline):
        if i == 10:
            pipeline.remove(2)

    pipeline = TrackingPipeline(OracleSegmenter(moderate), OracleDetector(moderate))
    results = _run(moderate, pipeline, on_frame=remove_at_10)
    assert {o.obj_id for o in results[10].objects} == {1, 2, 3}
    assert all({o.obj_id for o in r.objects} == {1, 3} for r in results[11:])
    scores = evaluate_sequence(moderate.truth, _predictions(results), {1: 1, 3: 3})
    assert scores.id_switches == 0 and scores.j > 0.9


def test_frames_between_keyframes_are_propagated_accurately(moderate):
    pipeline = TrackingPipeline(
        OracleSegmenter(moderate), None, PipelineConfig(keyframes=KeyframeConfig(interval=10))
    )
    results = _run(moderate, pipeline)
    propagated = [r for r in results if not r.is_keyframe]
    assert len(propagated) >= 30
    assert all(o.state == TrackState.PROPAGATED for r in propagated for o in r.objects)
    scores = evaluate_sequence(moderate.truth, _predictions(results), {1: 1, 2: 2, 3: 3})
    assert scores.j > 0.85
