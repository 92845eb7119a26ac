"""The pipeline with the real components: untrained SAM 2.1 tiny (256 px) and YOLOv10-N.

Untrained weights give meaningless masks, so this proves the real components plug in:
states, ids, keyframe decisions and prompts stay consistent and nothing crashes.
"""

import pytest
from tracker_fixtures import IMAGE_SIZE, moving_frames

from sam2_ros.core.keyframes import KeyframeConfig
from sam2_ros.core.pipeline import PipelineConfig, TrackingPipeline
from sam2_ros.core.tracking_types import TrackState
from sam2_ros.models.detector import YoloDetector
from sam2_ros.models.sam2_model import load_sam2
from sam2_ros.models.streaming_tracker import StreamingTracker


@pytest.fixture(scope='module')
def real_pipeline_parts():
    loaded = load_sam2('tiny', untrained=True, device='cpu', image_size=IMAGE_SIZE)
    detector = YoloDetector('yolov10n.pt', confidence=0.0, device='cpu', untrained=True)
    return loaded, detector


@pytest.mark.timeout(300)
def test_real_models_run_the_whole_pipeline(real_pipeline_parts):
    loaded, detector = real_pipeline_parts
    config = PipelineConfig(keyframes=KeyframeConfig(interval=3))
    pipeline = TrackingPipeline(StreamingTracker(loaded), detector, config)
    frames = moving_frames(16)
    first = pipeline.process(frames[0], stamp=0)
    assert not first.is_keyframe and first.keyframe_reasons == ('no_objects',)
    tracked, sam_out = pipeline.add_object(points=[[35, 45]], labels=[1], label='patch')
    assert tracked.obj_id == 1 and tracked.label == 'patch'
    assert tracked.state == TrackState.TRACKING and len(sam_out.candidates) == 3
    seen_keyframe = seen_propagated = False
    for i, frame in enumerate(frames[1:], start=1):
        result = pipeline.process(frame, stamp=i)
        assert result.frame_index == i and result.stamp == i
        if i == 5:
            second, _ = pipeline.add_object(box=[60, 20, 120, 90])
            assert second.obj_id == 2
        if i == 10:
            pipeline.remove(1)
        # the result of frame i comes before the prompts made after it
        expected = {1} if i <= 5 else {1, 2} if i <= 10 else {2}
        assert {o.obj_id for o in result.objects} == expected
        for obj in result.objects:
            assert obj.mask.shape == (120, 160)
            assert obj.area == int(obj.mask.sum())
            assert (obj.box is None) == (obj.area == 0)
            if result.is_keyframe:
                assert obj.state != TrackState.PROPAGATED or 'drift' in ' '.join(result.events)
        seen_keyframe |= result.is_keyframe
        seen_propagated |= not result.is_keyframe
        assert result.timings_ms['total'] >= result.timings_ms['flow']
    assert seen_keyframe and seen_propagated
    assert pipeline.stats.frames == 16 and pipeline.stats.keyframes >= 4
    assert pipeline.reset() == 1 and pipeline.object_ids == []


@pytest.mark.timeout(300)
def test_real_models_on_the_semi_synthetic_scenario(real_pipeline_parts):
    # The oracle tests' scenario script (prompts, removal, auto-tracking) with the real models:
    # untrained outputs are meaningless, but ids and states must stay consistent.
    from sam2_ros.evaluation import synthetic

    loaded, detector = real_pipeline_parts
    sequence = synthetic.scenario('moderate_motion', 16, width=160, height=120)
    config = PipelineConfig(
        keyframes=KeyframeConfig(interval=4), auto_track_classes=('orange',), max_objects=4
    )
    pipeline = TrackingPipeline(StreamingTracker(loaded), detector, config)
    for i, frame in enumerate(sequence.frames):
        result = pipeline.process(frame, stamp=i)
        if i == 0:
            for gt_id in (1, 2, 3):
                pipeline.add_object(box=sequence.truth[0][gt_id].box, obj_id=gt_id)
        if i == 8:
            pipeline.remove(2)
        ids = [o.obj_id for o in result.objects]
        assert ids == sorted(ids) and len(ids) <= config.max_objects
        if 1 <= i <= 8:
            assert {1, 2, 3} <= set(ids)
        if i > 8:
            assert 2 not in ids and {1, 3} <= set(ids)
        for obj in result.objects:
            assert obj.state in tuple(TrackState)
            assert obj.reanchor_count >= 0 and obj.frames_since_keyframe >= 0
            if obj.state == TrackState.LOST:
                assert obj.area == 0
    assert pipeline.stats.keyframes >= 3
