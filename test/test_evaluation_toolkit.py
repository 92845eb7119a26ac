"""Semi-synthetic sequences, metrics on hand-made masks, and the oracle doubles."""

import numpy as np
import pytest

from sam2_ros.core.prompts import FrameError, PromptError
from sam2_ros.core.streaming_tracker import UnknownObjectError
from sam2_ros.evaluation import synthetic
from sam2_ros.evaluation.metrics import (
    boundary_f_measure,
    evaluate_sequence,
    recovery_frames,
    region_similarity,
)
from sam2_ros.evaluation.oracles import DriftEvent, OracleDetector, OracleSegmenter
from sam2_ros.evaluation.synthetic import ObjectTruth


def _square(x, y, size=10, shape=(40, 40)):
    mask = np.zeros(shape, bool)
    mask[y : y + size, x : x + size] = True
    return mask


def test_region_similarity_known_answers():
    assert region_similarity(_square(0, 0), _square(5, 0)) == pytest.approx(50 / 150)
    assert region_similarity(_square(0, 0), _square(0, 0)) == 1.0
    assert region_similarity(_square(0, 0), _square(20, 20)) == 0.0
    empty = np.zeros((40, 40), bool)
    assert region_similarity(empty, empty) == 1.0


def test_boundary_f_known_answers():
    big = np.zeros((200, 200), bool)
    big[50:150, 50:150] = True
    shifted = np.roll(big, 1, axis=1)  # within the 2-px tolerance of a 283-px diagonal
    assert boundary_f_measure(big, big) == 1.0
    assert boundary_f_measure(shifted, big) == pytest.approx(1.0)
    far = np.roll(big, 30, axis=1)  # only the horizontal edges partly agree
    assert boundary_f_measure(far, big) < 0.6
    empty = np.zeros_like(big)
    assert boundary_f_measure(empty, empty) == 1.0
    assert boundary_f_measure(empty, big) == 0.0


def _truth(mask, class_id=0):
    ys, xs = np.nonzero(mask)
    box = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) if len(xs) else None
    return ObjectTruth(mask, box, 1.0 if len(xs) else 0.0, class_id, 'thing')


def test_sequence_scores_id_switches_and_recovery():
    a, b = _square(0, 0), _square(25, 25)
    truth = [{1: _truth(a), 2: _truth(b)} for _ in range(4)]
    predictions = [
        {1: a, 2: b},
        {1: a, 2: b},
        {1: b, 2: a},  # ids swapped on frame 2
        {1: a, 2: b},  # and back on frame 3
    ]
    scores = evaluate_sequence(truth, predictions, {1: 1, 2: 2})
    assert scores.objects[1].j == pytest.approx(0.75)
    assert scores.objects[1].id_switches == 2 and scores.id_switches == 4
    assert scores.objects[1].j_per_frame == [1.0, 1.0, 0.0, 1.0]
    assert recovery_frames(scores.objects[1].j_per_frame, 2) == 1
    assert recovery_frames([1.0, 0.0, None, 0.1], 1) is None
    j = [1.0, 0.0, 0.9, 0.1, 0.8, 0.9, 0.7]
    assert recovery_frames(j, 1) == 1
    assert recovery_frames(j, 1, hold=3) == 3  # the first sustained run starts at frame 4
    assert recovery_frames(j, 1, hold=4) is None
    with pytest.raises(ValueError, match='4 ground-truth frames but 1 predictions'):
        evaluate_sequence(truth, predictions[:1], {1: 1})


def test_invisible_frames_count_false_positives_not_j():
    a = _square(0, 0)
    empty = np.zeros_like(a)
    truth = [{1: _truth(a)}, {1: _truth(empty)}]
    scores = evaluate_sequence(truth, [{1: a}, {1: a}], {1: 1})
    assert scores.objects[1].frames_visible == 1 and scores.objects[1].j == 1.0
    assert scores.objects[1].false_positive_frames == 1


@pytest.fixture(scope='module')
def occlusion():
    return synthetic.scenario_occlusion(40)


def test_sequences_are_real_deterministic_and_exact(occlusion):
    if synthetic.OPENCV_DATA.joinpath('vtest.avi').is_file():
        assert occlusion.source == 'opencv-doc'
    again = synthetic.scenario_occlusion(40)
    assert all(np.array_equal(a, b) for a, b in zip(occlusion.frames, again.frames, strict=True))
    fractions = [t[1].visible_fraction for t in occlusion.truth]
    assert max(fractions) > 0.95 and min(fractions) == 0.0  # fully hidden at some point
    first_hidden = fractions.index(0.0)
    assert any(f > 0.5 for f in fractions[first_hidden:])  # and comes out again
    for frame_truth in occlusion.truth:
        masks = [t.mask for t in frame_truth.values()]
        assert not (masks[0] & masks[1]).any()  # visible masks never overlap
        for t in frame_truth.values():
            assert (t.box is None) == (not t.mask.any())


def test_exit_and_reentry():
    sequence = synthetic.scenario_exit_reentry(40)
    visible = [t[1].box is not None for t in sequence.truth]
    assert visible[0] and not all(visible) and visible[-1]


def test_generated_fallback_without_opencv_doc(tmp_path, monkeypatch):
    monkeypatch.setattr(synthetic, 'OPENCV_DATA', tmp_path)
    sequence = synthetic.scenario_moderate_motion(10, width=320, height=240)
    assert sequence.source == 'generated'
    assert sequence.frames[0].shape == (240, 320, 3)
    assert all(t.box is not None for t in sequence.truth[0].values())


def test_oracle_segmenter_follows_truth_and_injects_drift(occlusion):
    oracle = OracleSegmenter(occlusion, drift_events=(DriftEvent(5, 2, 'other_object'),))
    with pytest.raises(FrameError, match='no frame yet'):
        oracle.add_object(points=[[1, 1]], labels=[1])
    oracle.step(occlusion.frames[0])
    box = occlusion.truth[0][2].box
    result = oracle.add_object(box=box)
    assert result.obj_id == 1 and np.array_equal(result.mask, occlusion.truth[0][2].mask)
    with pytest.raises(PromptError, match='lies outside'):
        oracle.add_object(points=[[5000, 1]], labels=[1])
    with pytest.raises(UnknownObjectError):
        oracle.reanchor(9, box=[1, 1, 5, 5])
    for i in range(1, 8):
        out = oracle.step(occlusion.frames[i]).objects[1]
        if i < 5:
            assert region_similarity(out.mask, occlusion.truth[i][2].mask) == 1.0
        else:  # drifted onto object 1
            assert region_similarity(out.mask, occlusion.truth[i][1].mask) == 1.0
    fixed = oracle.reanchor(1, box=occlusion.truth[7][2].box)
    assert region_similarity(fixed.mask, occlusion.truth[7][2].mask) == 1.0
    assert [c[0] for c in oracle.calls].count('step') == 8
    with pytest.raises(FrameError, match='not part of the oracle sequence'):
        oracle.step(np.zeros_like(occlusion.frames[0]))


def test_oracle_detector_noise_misses_and_blindness(occlusion):
    clean = OracleDetector(occlusion)
    detections = clean.detect(occlusion.frames[0])
    assert sorted(d.box for d in detections) == sorted(
        tuple(float(v) for v in t.box) for t in occlusion.truth[0].values()
    )
    assert {d.class_name for d in detections} == {'orange', 'apple'}
    noisy = OracleDetector(occlusion, box_noise_px=3.0, false_positives_per_frame=2.0, seed=1)
    assert noisy.detect(occlusion.frames[3]) == noisy.detect(occlusion.frames[3])
    blind = OracleDetector(occlusion)
    blind.blind(1, 0, 10)
    assert {d.class_name for d in blind.detect(occlusion.frames[2])} == {'apple'}
    assert OracleDetector(occlusion, miss_rate=1.0).detect(occlusion.frames[0]) == []
