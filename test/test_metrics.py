"""Metrics on hand-made masks with answers worked out by hand or by brute force."""

from types import SimpleNamespace

import numpy as np
import pytest

from sam2_ros.evaluation.metrics import (
    boundary,
    boundary_f_measure,
    boundary_tolerance,
    evaluate_sequence,
    frame_masks,
    id_switches,
    match_ids,
    recovery_frames,
    region_similarity,
)
from sam2_ros.evaluation.synthetic import ObjectTruth


def _square(x, y, size=10, shape=(40, 40)):
    mask = np.zeros(shape, bool)
    mask[y : y + size, x : x + size] = True
    return mask


EMPTY = np.zeros((40, 40), bool)


def test_region_similarity_known_answers():
    # 10x10 squares 5 px apart: 50 shared pixels of 150
    assert region_similarity(_square(0, 0), _square(5, 0)) == pytest.approx(1 / 3)
    assert region_similarity(_square(0, 0), _square(0, 0)) == 1.0
    assert region_similarity(_square(0, 0), _square(20, 20)) == 0.0
    assert region_similarity(_square(0, 0, 10), _square(0, 0, 5)) == pytest.approx(25 / 100)
    assert region_similarity(EMPTY, EMPTY) == 1.0
    assert region_similarity(EMPTY, _square(0, 0)) == 0.0
    assert region_similarity(_square(0, 0).astype(np.uint8), _square(5, 0)) == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match='one shape'):
        region_similarity(EMPTY, np.zeros((40, 41), bool))


def test_boundary_tolerance_follows_the_image_diagonal():
    assert boundary_tolerance((480, 640)) == 6  # 0.008 x 800 = 6.4
    assert boundary_tolerance((100, 100)) == 1  # 0.008 x 141 = 1.13
    assert boundary_tolerance((10, 10)) == 1  # never below one pixel
    assert boundary_tolerance((480, 640), 0.01) == 8
    assert boundary_tolerance((480, 640), 3) == 3  # >= 1: pixels
    with pytest.raises(ValueError, match='positive'):
        boundary_tolerance((10, 10), 0)


def test_boundary_is_the_inner_ring_but_not_the_image_border():
    ring = boundary(_square(10, 10, 5))
    assert ring.sum() == 16  # 5 x 5 square: 25 pixels, 9 inside
    assert not ring[12, 12] and ring[10, 10] and ring[14, 12]
    at_border = boundary(_square(0, 0, 5))  # touches the top and left image border
    assert at_border.sum() == 9  # only the bottom row and the right column
    assert not at_border[0, 0:4].any() and not at_border[0:4, 0].any()
    assert not boundary(np.ones((6, 6), bool)).any()


def test_boundary_f_known_answers():
    big = _square(50, 50, 40, (200, 200))  # tolerance: 0.008 x 283 -> 2 px
    assert boundary_f_measure(big, big) == 1.0
    assert boundary_f_measure(np.roll(big, 1, axis=1), big) == 1.0
    assert boundary_f_measure(np.roll(big, 2, axis=0), big) == 1.0
    assert boundary_f_measure(np.roll(big, 100, axis=1), big) == 0.0  # far apart
    assert boundary_f_measure(EMPTY, EMPTY) == 1.0
    assert boundary_f_measure(EMPTY, _square(0, 0)) == 0.0
    assert boundary_f_measure(_square(0, 0), EMPTY) == 0.0
    # Both masks fill the image: no boundary on either side.
    assert boundary_f_measure(np.ones((9, 9), bool), np.ones((9, 9), bool)) == 1.0


def test_boundary_f_of_a_square_shifted_past_the_tolerance():
    # 640x480: tolerance 6 px. A 40x40 square has a 156-pixel boundary ring. Shifted 6 px,
    # every boundary pixel is within 6 px of the other ring: F = 1. Shifted 8 px, the top
    # and bottom rows match except their 2 outermost pixels (38 each), and each vertical
    # edge matches only its 6 pixels nearest the corners at either end (12 each side of
    # the pair): 88 of 156 match, in both directions, so F = 88 / 156.
    gt = _square(300, 200, 40, (480, 640))
    assert boundary_f_measure(np.roll(gt, 6, axis=1), gt) == 1.0
    assert boundary_f_measure(np.roll(gt, 8, axis=1), gt) == pytest.approx(88 / 156)
    assert boundary_f_measure(np.roll(gt, 8, axis=1), gt, bound_th=8) == 1.0


def _brute_force_f(pred, gt, tolerance):
    pred_b, gt_b = np.argwhere(boundary(pred)), np.argwhere(boundary(gt))
    distances = np.sqrt(((pred_b[:, None, :] - gt_b[None, :, :]) ** 2).sum(axis=2))
    precision = np.mean(distances.min(axis=1) <= tolerance)
    recall = np.mean(distances.min(axis=0) <= tolerance)
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


@pytest.mark.parametrize('seed', range(4))
def test_boundary_f_matches_a_brute_force_reference(seed):
    rng = np.random.default_rng(seed)
    shape = (60, 80)

    def blob():
        y, x = np.mgrid[0 : shape[0], 0 : shape[1]]
        cx, cy = rng.uniform(20, 60), rng.uniform(15, 45)
        rx, ry = rng.uniform(6, 18), rng.uniform(6, 14)
        mask = ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1
        mask[rng.integers(0, 60), :] = False  # a cut makes it less regular
        return mask

    pred, gt = blob(), blob()
    for tolerance in (1, 3):
        expected = _brute_force_f(pred, gt, tolerance)
        assert boundary_f_measure(pred, gt, bound_th=tolerance) == pytest.approx(expected)


def _truth(mask, fraction=None):
    ys, xs = np.nonzero(mask)
    box = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) if len(xs) else None
    if fraction is None:
        fraction = 1.0 if len(xs) else 0.0
    return ObjectTruth(mask, box, fraction, 0, 'thing')


def test_evaluate_sequence_scores_each_frame():
    a, b = _square(0, 0), _square(25, 25)
    truth = [
        {1: _truth(a), 2: _truth(b)},
        {1: _truth(a), 2: _truth(b)},
        {1: _truth(a), 2: _truth(EMPTY)},  # object 2 not visible
        {1: _truth(a), 2: _truth(b, fraction=0.2)},  # barely visible: not scored
    ]
    predictions = [
        {1: a, 2: b},
        {1: _square(5, 0), 2: b},  # object 1 off by half its width: J = 1/3
        {1: a, 2: b},  # a mask for an invisible object: a false positive
        {1: a},
    ]
    scores = evaluate_sequence(truth, predictions, {1: 1, 2: 2}, min_visible_fraction=0.3)
    one, two = scores.objects[1], scores.objects[2]
    assert one.j_per_frame == pytest.approx([1.0, 1 / 3, 1.0, 1.0])
    assert one.j == pytest.approx((3 + 1 / 3) / 4) and one.frames_visible == 4
    assert one.f_per_frame[0] == 1.0 and one.f_per_frame[1] < 1.0
    assert one.frames_missed == 1  # frame 1: no prediction overlaps it with IoU >= 0.5
    assert two.j_per_frame == [1.0, 1.0, None, None] and two.frames_visible == 2
    assert two.false_positive_frames == 1 and scores.false_positive_frames == 1
    assert scores.j == pytest.approx((one.j + two.j) / 2)
    assert scores.j_and_f == pytest.approx((scores.j + scores.f) / 2)
    assert scores.id_switches == 0
    with pytest.raises(ValueError, match='4 ground-truth frames but 1 predictions'):
        evaluate_sequence(truth, predictions[:1], {1: 1})


def test_an_absent_prediction_scores_zero_and_bare_masks_are_truth_too():
    a = _square(0, 0)
    scores = evaluate_sequence([{1: a}, {1: a}], [{1: a}, {}], {1: 1})
    assert scores.objects[1].j_per_frame == [1.0, 0.0]
    assert scores.objects[1].f_per_frame == [1.0, 0.0]


def test_a_reacquired_object_may_have_several_predicted_ids():
    a = _square(0, 0)
    truth = [{1: a}] * 4
    predictions = [{1: a}, {1: a}, {5: a}, {5: a}]  # lost, then added again as 5
    scores = evaluate_sequence(truth, predictions, {1: (1, 5)})
    assert scores.objects[1].j == 1.0 and scores.objects[1].pred_ids == (1, 5)
    assert scores.id_switches == 1  # the id did change once
    only_first = evaluate_sequence(truth, predictions, {1: 1})
    assert only_first.objects[1].j_per_frame == [1.0, 1.0, 0.0, 0.0]


def test_ids_are_matched_by_overlap_when_no_assignment_is_given():
    a, b = _square(0, 0), _square(25, 25)
    truth = [{1: a, 2: b}] * 3
    predictions = [{7: a, 3: b}, {7: a, 3: b}, {7: b, 3: a}]
    assert match_ids(truth, predictions) == {1: 7, 2: 3}
    scores = evaluate_sequence(truth, predictions)
    assert scores.assignment == {1: (7,), 2: (3,)}
    assert scores.objects[1].j_per_frame == [1.0, 1.0, 0.0]
    assert match_ids(truth, [{}, {}, {}]) == {}
    unmatched = evaluate_sequence(truth, [{}, {}, {}])
    assert unmatched.objects[1].pred_ids == () and unmatched.j == 0.0


def test_predictions_may_be_results_with_objects():
    a = _square(0, 0)
    step = SimpleNamespace(objects={4: SimpleNamespace(mask=a)})  # like a StepResult
    published = SimpleNamespace(objects=[SimpleNamespace(obj_id=4, mask=a)])  # pipeline
    assert frame_masks(step).keys() == {4} and frame_masks(published).keys() == {4}
    assert frame_masks(None) == {}
    scores = evaluate_sequence([{1: a}, {1: a}], [step, published], {1: 4})
    assert scores.objects[1].j == 1.0


def test_an_id_switch_is_counted_once_per_change():
    a, b = _square(0, 0), _square(25, 25)
    truth = [{1: a, 2: b}] * 6
    # Predicted id 1 follows object 1 for three frames, then id 2 takes over object 1.
    handover = [{1: a}] * 3 + [{2: a}] * 3
    assert id_switches(truth, handover) == {1: 1, 2: 0}
    # A swap of two ids and back: two switches for each object.
    swap = [{1: a, 2: b}, {1: b, 2: a}, {1: a, 2: b}]
    assert id_switches(truth[:3], swap) == {1: 2, 2: 2}
    # Frames without a match in between do not count.
    gap = [{1: a}, {}, {1: _square(8, 8)}, {1: a}, {1: a}, {1: a}]
    assert id_switches(truth, gap) == {1: 0, 2: 0}
    # A poor overlap (IoU 1/3) is no match, so it is no switch either.
    poor = [{1: a}, {2: _square(5, 0)}, {1: a}]
    assert id_switches(truth[:3], poor)[1] == 0
    assert evaluate_sequence(truth[:3], swap, {1: 1, 2: 2}).id_switches == 4


def test_recovery_frames():
    j = [1.0, 1.0, 0.2, 0.1, 0.6, 0.9]
    assert recovery_frames(j, 2) == 2  # frames 2 and 3 are below 0.5
    assert recovery_frames(j, 2, hold=2) == 2
    assert recovery_frames(j, 2, threshold=0.7) == 3
    assert recovery_frames(j, 0) == 0  # never dropped
    assert recovery_frames([1.0, 0.0, 0.1, 0.2], 1) is None
    assert recovery_frames([0.0, None, 0.8, 0.9], 0, hold=2) == 2  # None breaks a run
    assert recovery_frames([0.0, 0.8, None, 0.9], 0, hold=2) is None
    with pytest.raises(ValueError, match='hold'):
        recovery_frames(j, 0, hold=0)
