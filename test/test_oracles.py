"""The oracle segmenter and detector: tracker semantics, ground truth, injected faults."""

import inspect
import math

import numpy as np
import pytest

from sam2_ros.core.prompts import FrameError, PromptError, make_prompt
from sam2_ros.core.tracking_types import Detector, Segmenter
from sam2_ros.evaluation import synthetic
from sam2_ros.evaluation.metrics import evaluate_sequence, recovery_frames, region_similarity
from sam2_ros.evaluation.oracles import DriftEvent, OracleDetector, OracleSegmenter
from sam2_ros.evaluation.synthetic import Sequence
from sam2_ros.models.streaming_tracker import StreamingTracker, UnknownObjectError

W, H = 240, 180


@pytest.fixture(scope='module')
def moderate():
    return synthetic.scenario('moderate_motion', 16, W, H)


@pytest.fixture(scope='module')
def occlusion():
    return synthetic.scenario('occlusion', 24, W, H)


def _centre(box):
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


def _started(sequence, *gt_ids, **kwargs):
    """Step an oracle onto frame 0 and add one object per ground-truth id, by its box."""
    oracle = OracleSegmenter(sequence, **kwargs)
    oracle.step(sequence.frames[0])
    for gt_id in gt_ids:
        oracle.add_object(box=sequence.truth[0][gt_id].box)
    return oracle


def _public_members(protocol):
    return [
        name
        for name, value in vars(protocol).items()
        if not name.startswith('_') and (callable(value) or isinstance(value, property))
    ]


@pytest.mark.parametrize(
    ('oracle', 'reference', 'protocol'),
    [
        (OracleSegmenter, StreamingTracker, Segmenter),
        (OracleDetector, None, Detector),
    ],
)
def test_the_oracles_have_the_interfaces(oracle, reference, protocol):
    members = _public_members(protocol)
    assert members
    for name in members:
        mine, theirs = getattr(oracle, name), getattr(reference or protocol, name)
        assert isinstance(mine, property) == isinstance(theirs, property), name
        if not isinstance(mine, property):
            assert inspect.signature(mine).parameters.keys() == (
                inspect.signature(theirs).parameters.keys()
            ), name
            defaults = [p.default for p in inspect.signature(mine).parameters.values()]
            expected = [p.default for p in inspect.signature(theirs).parameters.values()]
            assert defaults == expected, name


def test_nothing_before_the_first_frame(moderate):
    oracle = OracleSegmenter(moderate)
    assert oracle.step_index == -1 and oracle.frame_size is None and oracle.object_ids == []
    with pytest.raises(FrameError, match='no frame yet'):
        oracle.add_object(points=[[10, 10]], labels=[1])
    with pytest.raises(FrameError, match='no frame yet'):
        oracle.refine(1, points=[[10, 10]], labels=[1])  # the frame is checked first
    with pytest.raises(FrameError, match='no frame yet'):
        oracle.reanchor(1, box=[0, 0, 5, 5])
    with pytest.raises(FrameError, match='dtype'):
        oracle.step(moderate.frames[0].astype(np.float32))
    with pytest.raises(FrameError, match='not part of the oracle sequence'):
        oracle.step(np.zeros_like(moderate.frames[0]))
    assert oracle.step_index == -1 and oracle.calls == []


def test_ids_and_prompt_errors_follow_the_tracker(moderate):
    oracle = _started(moderate)
    assert oracle.frame_size == (W, H) and oracle.step_index == 0
    assert oracle.add_object(box=moderate.truth[0][1].box).obj_id == 1
    assert oracle.add_object(box=moderate.truth[0][2].box).obj_id == 2
    assert oracle.add_object(box=moderate.truth[0][3].box, obj_id=7).obj_id == 7
    assert oracle.add_object(points=[[1, 1]], labels=[1]).obj_id == 8
    assert oracle.object_ids == [1, 2, 7, 8]
    for bad_id in (7, 0, -3, True, '9', 2.0):
        with pytest.raises(PromptError, match='object'):
            oracle.add_object(points=[[1, 1]], labels=[1], obj_id=bad_id)
    bad_prompts = [
        {'points': [[W + 5, 1]], 'labels': [1]},
        {'points': [[1, 1]], 'labels': [2]},
        {'box': [10, 10, 5, 20]},
        {},
        {'mask': np.zeros((H, W), bool)},
        {'mask': moderate.truth[0][1].mask, 'box': [0, 0, 9, 9]},
    ]
    for prompt in bad_prompts:
        with pytest.raises(PromptError) as raised:
            oracle.add_object(**prompt)
        with pytest.raises(PromptError) as direct:
            make_prompt(W, H, **prompt)
        assert str(raised.value) == str(direct.value)
    for call in (
        lambda: oracle.refine(5, points=[[1, 1]], labels=[1]),
        lambda: oracle.reanchor(5, box=[0, 0, 9, 9]),
        lambda: oracle.remove(5),
        lambda: oracle.target(5),
    ):
        with pytest.raises(UnknownObjectError, match='unknown object id 5; tracked ids'):
            call()
    with pytest.raises(PromptError, match='after the current step'):
        oracle.reanchor(1, box=moderate.truth[0][1].box, drop_since_step=1)
    assert oracle.object_ids == [1, 2, 7, 8]  # failed calls change nothing


def test_prompts_select_ground_truth_objects(moderate):
    truth = moderate.truth[0]
    oracle = _started(moderate)
    inside = np.argwhere(truth[2].mask)[len(np.argwhere(truth[2].mask)) // 2]
    point = [[inside[1] + 0.5, inside[0] + 0.5]]
    by_point = oracle.add_object(points=point, labels=[1])
    by_box = oracle.add_object(box=truth[3].box)
    by_mask = oracle.add_object(mask=truth[1].mask)
    assert np.array_equal(by_point.mask, truth[2].mask)
    assert np.array_equal(by_box.mask, truth[3].mask)
    assert np.array_equal(by_mask.mask, truth[1].mask)
    for result in (by_point, by_box, by_mask):
        assert result.is_conditioning and result.score == pytest.approx(0.95)
        assert result.visibility > 0.99 and result.object_score_logit > 0
        assert result.logits is None and result.candidates == []
    assert [oracle.target(i) for i in oracle.object_ids] == [2, 3, 1]
    # Nothing there: the object tracks nothing.
    background = np.argwhere(~np.any([t.mask for t in truth.values()], axis=0))[0]
    nothing = oracle.add_object(points=[[background[1] + 0.5, background[0] + 0.5]], labels=[1])
    assert not nothing.mask.any() and nothing.visibility < 0.01 and nothing.score == 0.0
    assert oracle.target(nothing.obj_id) is None
    # A background click on the object cancels a foreground click on it.
    assert not oracle.add_object(points=point * 2, labels=[1, 0]).mask.any()
    # A box far from every object selects nothing.
    assert oracle.target(oracle.add_object(box=[0, 0, 3, 3]).obj_id) is None


def test_steps_return_ground_truth_for_frames_or_copies_in_any_order(moderate):
    oracle = _started(moderate, 1, 2, 3)
    for expected_step, index in enumerate([1, 2, 3, 9, 4, 15], start=1):
        frame = moderate.frames[index]
        result = oracle.step(frame.copy() if index % 2 else frame)
        assert result.step == expected_step == oracle.step_index
        assert oracle.frame_index == index
        assert set(result.objects) == {1, 2, 3}
        for obj_id, out in result.objects.items():
            assert np.array_equal(out.mask, moderate.truth[index][obj_id].mask)
            assert not out.is_conditioning and out.visibility > 0.99
    out = oracle.step(moderate.frames[5]).objects[1]
    out.mask[:] = False  # outputs are copies: the truth stays intact
    assert moderate.truth[5][1].mask.any()
    assert oracle.count('step') == 8 and oracle.count('add_object') == 3
    assert [c.frame_index for c in oracle.calls if c.method == 'step'] == [0, 1, 2, 3, 9, 4, 15, 5]


def test_hidden_objects_are_empty_and_come_back(occlusion):
    oracle = _started(occlusion, 1)
    fractions = [t[1].visible_fraction for t in occlusion.truth]
    hidden = fractions.index(0.0)
    for index in range(1, len(fractions)):
        out = oracle.step(occlusion.frames[index]).objects[1]
        if index == hidden:
            assert not out.mask.any() and out.visibility < 0.5 and out.object_score_logit < 0
        else:
            assert np.array_equal(out.mask, occlusion.truth[index][1].mask)
    assert fractions[-1] == 1.0 and out.visibility > 0.5
    # An oracle with a minimum visible fraction reports slivers as not visible.
    strict = _started(occlusion, 1, min_visible_fraction=0.5)
    sliver = next(i for i, f in enumerate(fractions) if 0 < f < 0.5)
    assert not strict.step(occlusion.frames[sliver]).objects[1].mask.any()


def test_remove_and_reset(moderate):
    oracle = _started(moderate, 1, 2)
    oracle.remove(1)
    assert set(oracle.step(moderate.frames[1]).objects) == {2}
    oracle.reset()
    assert oracle.object_ids == [] and oracle.step_index == -1 and oracle.frame_size is None
    with pytest.raises(FrameError):
        oracle.add_object(box=moderate.truth[0][1].box)
    assert oracle.step(moderate.frames[0]).step == 0
    assert oracle.add_object(box=moderate.truth[0][3].box).obj_id == 1  # ids start over
    assert [c.method for c in oracle.calls] == [
        'step',
        'add_object',
        'add_object',
        'remove',
        'step',
        'reset',
        'step',
        'add_object',
    ]


def test_background_drift_stays_until_reanchored(moderate):
    event = DriftEvent(3, 1, 'background', score=0.4)
    oracle = _started(moderate, 1, 2, drift_events=(event,))
    drift_masks = []
    for index in range(1, 8):
        result = oracle.step(moderate.frames[index])
        one, two = result.objects[1], result.objects[2]
        truth = moderate.truth[index]
        assert np.array_equal(two.mask, truth[2].mask)  # only object 1 drifts
        if index < 3:
            assert np.array_equal(one.mask, truth[1].mask) and not oracle.drifted(1)
            continue
        assert oracle.drifted(1) and one.score == 0.4 and one.visibility > 0.99
        assert region_similarity(one.mask, truth[1].mask) == 0.0
        drift_masks.append(one.mask)
    at_drift = moderate.truth[3]
    assert not any((drift_masks[0] & t.mask).any() for t in at_drift.values())
    assert drift_masks[0].sum() == at_drift[1].mask.sum()  # the object's own shape and size
    assert all(np.array_equal(m, drift_masks[0]) for m in drift_masks)  # stuck there
    fixed = oracle.reanchor(1, moderate.truth[7][1].box, drop_since_step=2)
    assert np.array_equal(fixed.mask, moderate.truth[7][1].mask) and fixed.is_conditioning
    assert not oracle.drifted(1)
    assert np.array_equal(
        oracle.step(moderate.frames[8]).objects[1].mask, moderate.truth[8][1].mask
    )


def test_drift_shows_on_the_first_step_at_or_after_its_frame(moderate):
    oracle = _started(moderate, 1, drift_events=(DriftEvent(3, 1, 'background'),))
    assert not oracle.drifted(1)
    oracle.step(moderate.frames[2])
    assert not oracle.drifted(1)
    oracle.step(moderate.frames[5])  # frames 3 and 4 skipped, as on a keyframe schedule
    assert oracle.drifted(1)
    oracle.reset()  # re-arms the event
    oracle.step(moderate.frames[0])
    oracle.add_object(box=moderate.truth[0][1].box)
    oracle.step(moderate.frames[4])
    assert oracle.drifted(1)


def test_drift_to_another_object_follows_it(moderate):
    event = DriftEvent(2, 1, 'other_object', other_gt_id=3)
    oracle = _started(moderate, 1, drift_events=(event,))
    for index in range(1, 6):
        out = oracle.step(moderate.frames[index]).objects[1]
        expected = 1 if index < 2 else 3
        assert np.array_equal(out.mask, moderate.truth[index][expected].mask)
    # Re-anchored on the wrong object, it follows that one.
    oracle.reanchor(1, moderate.truth[5][2].box)
    assert oracle.target(1) == 2 and not oracle.drifted(1)
    assert np.array_equal(
        oracle.step(moderate.frames[6]).objects[1].mask, moderate.truth[6][2].mask
    )
    # Refining with a click on the right object puts it back.
    point = np.argwhere(moderate.truth[6][1].mask)[0][::-1] + 0.5
    assert np.array_equal(oracle.refine(1, [point], [1]).mask, moderate.truth[6][1].mask)
    assert oracle.target(1) == 1


def test_drift_to_the_nearest_other_object(moderate):
    oracle = _started(moderate, 2, drift_events=(DriftEvent(1, 2, 'other_object'),))
    out = oracle.step(moderate.frames[1]).objects[1]
    truth = moderate.truth[1]
    own = _centre(truth[2].box)
    distances = {g: math.dist(own, _centre(truth[g].box)) for g in (1, 3)}
    nearest = min(distances, key=distances.get)
    assert np.array_equal(out.mask, truth[nearest].mask)


def test_drift_events_are_validated(moderate):
    for event, message in (
        (DriftEvent(1, 9), 'unknown ground-truth id'),
        (DriftEvent(1, 1, 'jump'), 'unknown drift kind'),
        (DriftEvent(1, 1, 'other_object', other_gt_id=1), 'not another object'),
    ):
        with pytest.raises(ValueError, match=message):
            OracleSegmenter(moderate, (event,))


def test_frames_with_equal_pixels_are_told_apart_by_order(moderate):
    frames = [moderate.frames[0], moderate.frames[0].copy(), moderate.frames[1]]
    truth = [moderate.truth[0], moderate.truth[2], moderate.truth[1]]
    sequence = Sequence(frames, truth, moderate.source, moderate.spec)
    oracle = OracleSegmenter(sequence)
    oracle.step(frames[0].copy())
    oracle.step(frames[0].copy())
    assert oracle.frame_index == 1  # the next frame with these pixels
    oracle.step(frames[2])
    oracle.step(frames[0].copy())
    assert oracle.frame_index == 0  # none after: the first one


def test_oracle_tracking_scores_perfectly_and_recovery_is_measurable(moderate):
    event = DriftEvent(5, 2, 'background')
    oracle = _started(moderate, 1, 2, 3, drift_events=(event,))
    predictions = [{}]
    for index in range(1, len(moderate)):
        result = oracle.step(moderate.frames[index])
        if index == 9:  # re-anchor four frames after the drift
            result.objects[2] = oracle.reanchor(2, moderate.truth[9][2].box)
        predictions.append({i: o.mask for i, o in result.objects.items()})
    scores = evaluate_sequence(moderate.truth[1:], predictions[1:], {1: 1, 2: 2, 3: 3})
    assert scores.objects[1].j == scores.objects[3].j == 1.0
    assert scores.objects[1].f == 1.0 and scores.id_switches == 0
    j = [None] + scores.objects[2].j_per_frame
    assert j[5:9] == [0.0] * 4 and recovery_frames(j, event.frame_index) == 4


def test_detector_returns_ground_truth_boxes(occlusion):
    detector = OracleDetector(occlusion)
    assert detector.class_names == synthetic.CLASS_NAMES
    for index, frame in enumerate(occlusion.frames):
        found = detector.detect_with_truth(frame.copy())
        expected = {g: t for g, t in occlusion.truth[index].items() if t.visible_fraction >= 0.3}
        assert sorted(g for _, g in found) == sorted(expected)
        for detection, gt_id in found:
            t = expected[gt_id]
            assert detection.box == tuple(float(v) for v in t.box)
            assert (detection.class_id, detection.class_name) == (t.class_id, t.class_name)
            assert detection.score == 0.9
    assert detector.calls == list(range(len(occlusion)))
    # The orange, partly hidden, is not detected below the visible fraction.
    fractions = [t[1].visible_fraction for t in occlusion.truth]
    partial = next(i for i, f in enumerate(fractions) if 0 < f < 0.3)
    assert {d.class_name for d in detector.detect(occlusion.frames[partial])} == {'apple'}
    with pytest.raises(FrameError, match='not part of the oracle sequence'):
        detector.detect(np.zeros_like(occlusion.frames[0]))


def test_detector_noise_misses_and_false_positives(moderate):
    truth = {(i, g): t.box for i, f in enumerate(moderate.truth) for g, t in f.items()}
    noisy = OracleDetector(moderate, box_noise_px=2.0, seed=1)
    errors = []
    for index, frame in enumerate(moderate.frames):
        for detection, gt_id in noisy.detect_with_truth(frame):
            errors.extend(np.subtract(detection.box, truth[index, gt_id]))
    assert len(errors) == 4 * len(truth)
    assert 1.5 < np.std(errors) < 2.5 and abs(np.mean(errors)) < 0.5
    same = OracleDetector(moderate, box_noise_px=2.0, seed=1)
    other = OracleDetector(moderate, box_noise_px=2.0, seed=2)
    assert same.detect(moderate.frames[3]) == noisy.detect(moderate.frames[3])
    assert other.detect(moderate.frames[3]) != noisy.detect(moderate.frames[3])

    missing = OracleDetector(moderate, miss_rate=0.3, seed=4)
    found = sum(len(missing.detect(frame)) for frame in moderate.frames)
    assert 0.5 * len(truth) < found < 0.9 * len(truth)
    assert OracleDetector(moderate, miss_rate=1.0).detect(moderate.frames[0]) == []

    extra = [  # Poisson, 2 per frame on average: 64 frames of 4 seeds
        d
        for seed in range(4)
        for frame in moderate.frames
        for d, g in OracleDetector(
            moderate, false_positives_per_frame=2.0, seed=seed
        ).detect_with_truth(frame)
        if g is None
    ]
    assert 1.4 < len(extra) / (4 * len(moderate)) < 2.6
    for detection in extra:
        x0, y0, x1, y1 = detection.box
        assert 0 <= x0 < x1 <= W and 0 <= y0 < y1 <= H
        assert detection.class_name == synthetic.CLASS_NAMES[detection.class_id]
        assert detection.score == 0.6


def test_blinding_hides_one_object_for_a_range_of_frames(moderate):
    reference = OracleDetector(moderate, box_noise_px=1.0, miss_rate=0.2, seed=3)
    blinded = OracleDetector(moderate, box_noise_px=1.0, miss_rate=0.2, seed=3)
    blinded.blind(2, 4, 6)  # both ends included
    for index, frame in enumerate(moderate.frames):
        seen = blinded.detect_with_truth(frame)
        expected = [(d, g) for d, g in reference.detect_with_truth(frame) if g != 2 or index < 4]
        if index > 6:
            expected = reference.detect_with_truth(frame)
        assert seen == expected  # the other objects' detections are unchanged
    frames = moderate.frames[4:7]  # the blinding did hide detections there
    assert any(g == 2 for frame in frames for _, g in reference.detect_with_truth(frame))
    with pytest.raises(ValueError, match='empty'):
        blinded.blind(1, 5, 4)
