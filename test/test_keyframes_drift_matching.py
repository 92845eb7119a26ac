import numpy as np
import pytest

from sam2_ros.core.drift import DriftConfig, DriftMonitor, Verdict
from sam2_ros.core.flow import Propagation
from sam2_ros.core.keyframes import FrameSignals, KeyframeConfig, KeyframeScheduler
from sam2_ros.core.matching import (
    MatchConfig,
    MatchTarget,
    box_iou,
    centre_distance,
    match_detections,
    unclaimed,
)
from sam2_ros.core.tracking_types import Detection


def test_interval_keyframes():
    scheduler = KeyframeScheduler(KeyframeConfig(interval=5))
    decisions = [scheduler.decide(FrameSignals(frames_since_keyframe=s)) for s in range(-1, 6)]
    assert decisions[0].reasons == ('first_frame',)
    assert [d.is_keyframe for d in decisions[1:]] == [False, False, False, False, True, True]
    assert decisions[1].reasons == ('propagated',)
    assert decisions[5].reasons == ('interval',)


def test_adaptive_triggers_say_why():
    scheduler = KeyframeScheduler(KeyframeConfig(interval=10, min_flow_confidence=0.4))
    decision = scheduler.decide(
        FrameSignals(
            frames_since_keyframe=1,
            drift_suspected=True,
            lost_objects=1,
            min_flow_confidence=0.2,
            max_motion_px=80.0,
        )
    )
    assert decision.is_keyframe
    assert decision.reasons == (
        'drift_suspected',
        'lost_object',
        'low_flow_confidence',
        'large_motion',
    )
    calm = scheduler.decide(FrameSignals(frames_since_keyframe=1, min_flow_confidence=0.9))
    assert not calm.is_keyframe


def test_lost_objects_are_searched_every_n_frames():
    scheduler = KeyframeScheduler(KeyframeConfig(interval=50, lost_search_interval=3))
    pattern = [
        scheduler.decide(FrameSignals(frames_since_keyframe=s, lost_objects=1)).is_keyframe
        for s in range(6)
    ]
    assert pattern == [False, False, True, False, False, True]


@pytest.mark.parametrize(
    'config, message',
    [
        (KeyframeConfig(interval=0), 'interval must be >= 1'),
        (KeyframeConfig(min_flow_confidence=1.5), 'min_flow_confidence'),
        (KeyframeConfig(max_motion_px=0), 'max_motion_px'),
        (DriftConfig(min_iou=-0.1), 'min_iou must be in'),
        (MatchConfig(max_centre_distance=0), 'max_centre_distance'),
    ],
)
def test_invalid_configs_are_rejected(config, message):
    with pytest.raises(ValueError, match=message):
        config.validate()


def _square(x, y, size=20, shape=(100, 100)):
    mask = np.zeros(shape, bool)
    mask[y : y + size, x : x + size] = True
    return mask


def _flow(mask, confidence):
    return Propagation(mask, None, confidence, 30, 30, 0.2, 1.0, 1.0)


def test_drift_verdicts():
    monitor = DriftMonitor(DriftConfig())
    here = _square(10, 10)
    assert monitor.assess(here, 0.9, 0.99, _flow(here, 0.9)).verdict == Verdict.CONSISTENT
    jumped = monitor.assess(_square(60, 60), 0.9, 0.99, _flow(here, 0.9))
    assert jumped.verdict == Verdict.DRIFT and jumped.reasons == ('low_iou_with_flow',)
    assert jumped.iou_with_flow == 0.0
    # flow not trusted: disagreement alone is not drift
    assert monitor.assess(_square(60, 60), 0.9, 0.99, _flow(here, 0.1)).verdict == (
        Verdict.CONSISTENT
    )
    low = monitor.assess(here, 0.2, 0.99, _flow(here, 0.9))
    assert low.verdict == Verdict.DRIFT and low.reasons == ('low_score',)
    # not visible while flow still tracks the textured region: drift, not occlusion
    hidden_but_there = monitor.assess(np.zeros_like(here), 0.9, 0.01, _flow(here, 0.9))
    assert hidden_but_there.verdict == Verdict.DRIFT
    # ... unless the flow's mask is as old as an asynchronous SAM 2 result: then occlusion
    stale = monitor.assess(np.zeros_like(here), 0.9, 0.01, _flow(here, 0.9), False)
    assert stale.verdict == Verdict.OCCLUDED and stale.reasons == ('not_visible',)
    # not visible and flow lost its features too: a real occlusion
    occluded = monitor.assess(np.zeros_like(here), 0.9, 0.01, _flow(here, 0.05))
    assert occluded.verdict == Verdict.OCCLUDED
    assert monitor.assess(here, 0.9, 0.99, None).verdict == Verdict.CONSISTENT
    # the object went half behind something: SAM 2's mask shrank inside the flow mask
    half_hidden = here.copy()
    half_hidden[:, 20:] = False
    partial = monitor.assess(half_hidden, 0.9, 0.99, _flow(here, 0.9))
    assert partial.verdict == Verdict.CONSISTENT and partial.iou_with_flow == 0.5
    # the same shrink plus pixels outside the flow mask is drift
    spilled = half_hidden | _square(60, 10)
    assert monitor.assess(spilled, 0.9, 0.99, _flow(here, 0.9)).verdict == Verdict.DRIFT


def _det(box, class_id=0, score=0.9):
    return Detection(box=box, score=score, class_id=class_id, class_name=f'c{class_id}')


def test_box_geometry():
    assert box_iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(1 / 3)
    assert box_iou((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0
    assert centre_distance((0, 0, 6, 8), (6, 8, 12, 16)) == pytest.approx(1.0)


def test_matching_respects_class_gates_and_uniqueness():
    config = MatchConfig()
    detections = [
        _det((100, 100, 140, 140), class_id=1),  # near object 1 but the wrong class
        _det((12, 12, 52, 52), class_id=0),  # object 1
        _det((14, 10, 54, 50), class_id=0),  # also near object 1 (and 2)
        _det((400, 400, 440, 440), class_id=0),  # far from everything
        _det((15, 15, 50, 50), class_id=0, score=0.1),  # below min_score
    ]
    targets = [
        MatchTarget(1, (10, 10, 50, 50), class_id=0),
        MatchTarget(2, (16, 12, 56, 52), class_id=-1),
        MatchTarget(3, (100, 100, 140, 140), class_id=0),
    ]
    matches = match_detections(targets, detections, config)
    assert matches[1] in (1, 2) and matches[2] in (1, 2) and matches[1] != matches[2]
    assert 3 not in matches  # only a class-1 detection is near it
    assert match_detections(targets[:1], detections, config, taken={1, 2}) == {}
    assert unclaimed(detections, [(10, 10, 50, 50)], 0.3, taken={0}) == [3]
