"""Objects in 3D from aligned depth: the numpy core against rendered ground truth."""

from __future__ import annotations

import numpy as np
import pytest

from sam2_ros.core.depth import (
    Depth3DConfig,
    DepthError,
    DepthImage,
    DepthPairer,
    Intrinsics,
    MaskedObject,
    depth_array,
    fit_problem,
    frame_objects_3d,
    metres_to_millimetres,
    object_3d,
)
from sam2_ros.evaluation.synthetic import ObjectSpec, SequenceSpec, Waypoint, generate
from sam2_ros.evaluation.synthetic_depth import (
    DepthNoise,
    DepthScene,
    nominal_intrinsics,
    render_depth,
)

WIDTH, HEIGHT = 640, 480
DISTANCES = (0.5, 1.0, 1.8, 2.4, 3.0)
SHAPES = ('ellipse', 'rounded_rect', 'hexagon', 'star', 'ellipse')
NOISY = DepthNoise(
    sigma_at_1m=0.002,  # 2 mm at 1 m, 18 mm at 3 m
    flying=0.6,
    edge_px=4,  # wider than the estimate's 3 px erosion: outlier rejection must catch them
    quantisation_m=0.001,
    holes=0.3,
)


@pytest.fixture(scope='module')
def scene():
    """Five cards from 0.5 to 3 m in front of a tilted background, two frames."""
    objects = tuple(
        ObjectSpec(k % 6, shape, (90, 80), (Waypoint(0, 80 + 120 * k, 150 + 60 * (k % 3)),))
        for k, shape in enumerate(SHAPES)
    )
    sequence = generate(SequenceSpec(objects, num_frames=2, width=WIDTH, height=HEIGHT))
    return sequence, render_depth(sequence, DepthScene(object_distances_m=DISTANCES))


def estimate(sequence, depth_frame, t, encoding='32FC1', config=None):
    """3D of every ground-truth object on frame `t`, from its exact mask."""
    data = depth_frame
    if encoding == '16UC1' and data.dtype != np.uint16:
        data = metres_to_millimetres(data)
    data, unit = depth_array(data, encoding)
    camera = nominal_intrinsics(WIDTH, HEIGHT)
    return {
        gt_id: object_3d(truth.mask, data, unit, camera, config, truth.box)
        for gt_id, truth in sequence.truth[t].items()
    }


def centre_errors(estimates, truth) -> dict[int, float]:
    return {
        gt_id: float(np.linalg.norm(np.subtract(est.centre, truth[gt_id].centre)))
        for gt_id, est in estimates.items()
    }


def test_noiseless_centres_within_5_mm_from_half_a_metre_to_three(scene):
    sequence, depth = scene
    for encoding in ('32FC1', '16UC1'):
        estimates = estimate(sequence, depth.clean[0], 0, encoding)
        assert all(e.has_3d and not e.reason for e in estimates.values())
        errors = centre_errors(estimates, depth.truth[0])
        assert max(errors.values()) <= 0.005, (encoding, errors)
        for gt_id, est in estimates.items():
            truth = depth.truth[0][gt_id]
            assert abs(est.centre[2] - DISTANCES[gt_id - 1]) < 0.05  # the card's distance
            # A percentile box trims the tips of pointed shapes (a star keeps ~75 %).
            size, true_size = np.asarray(est.box_size), np.asarray(truth.size)
            assert np.all(size <= true_size + 0.002) and np.all(size >= 0.65 * true_size)
            assert est.coverage == 1.0 and est.valid_points > 1000


def test_holes_flying_pixels_and_noise_within_2_cm(scene):
    sequence, _ = scene
    noisy = render_depth(sequence, DepthScene(object_distances_m=DISTANCES), NOISY, seed=3)
    for t in range(len(sequence)):
        estimates = estimate(sequence, noisy.depth[t], t, '16UC1')
        errors = centre_errors(estimates, noisy.truth[t])
        assert max(errors.values()) <= 0.02, errors
        assert all(0.6 < e.coverage < 0.8 for e in estimates.values())  # 30 % holes
    # Without outlier rejection the flying pixels pull the centres off (the test has teeth).
    loose = Depth3DConfig(mad_factor=1e6)
    errors = centre_errors(estimate(sequence, noisy.depth[0], 0, config=loose), noisy.truth[0])
    assert max(errors.values()) > 0.02, errors


def test_16uc1_millimetres_and_32fc1_metres_give_the_same_answer(scene):
    sequence, depth = scene
    noisy = render_depth(sequence, DepthScene(object_distances_m=DISTANCES), NOISY, seed=5)
    millimetres = metres_to_millimetres(noisy.depth[0])
    metres = millimetres.astype(np.float32) / 1000.0
    metres[millimetres == 0] = np.nan
    a = estimate(sequence, millimetres, 0, '16UC1')
    b = estimate(sequence, metres, 0, '32FC1')
    for gt_id in a:
        assert a[gt_id].valid_points == b[gt_id].valid_points
        np.testing.assert_allclose(a[gt_id].centre, b[gt_id].centre, atol=1e-6)
        np.testing.assert_allclose(a[gt_id].box_size, b[gt_id].box_size, atol=1e-6)


def test_a_mask_leaking_onto_the_background_keeps_the_object_centre(scene):
    sequence, depth = scene
    truth = sequence.truth[0][3]
    leaked = truth.mask.copy()
    x0, y0, x1, y1 = truth.box
    leaked[y0:y1, x1 : x1 + (x1 - x0) // 2] = True  # a drifted mask: +35 % on the background
    est = object_3d(leaked, depth.clean[0], 1.0, nominal_intrinsics(WIDTH, HEIGHT))
    error = np.linalg.norm(np.subtract(est.centre, depth.truth[0][3].centre))
    assert error < 0.02, error


def test_too_little_depth_gives_no_3d_and_says_why(scene):
    sequence, depth = scene
    truth = sequence.truth[0][1]
    empty = np.full((HEIGHT, WIDTH), np.nan, np.float32)
    est = object_3d(truth.mask, empty, 1.0, nominal_intrinsics(WIDTH, HEIGHT))
    assert not est.has_3d and est.centre is None and est.valid_points == 0
    assert 'too little depth: 0 of' in est.reason
    nothing = object_3d(np.zeros((HEIGHT, WIDTH), bool), depth.clean[0], 1.0, est_camera())
    assert not nothing.has_3d and nothing.reason == 'empty mask'


def est_camera() -> Intrinsics:
    return nominal_intrinsics(WIDTH, HEIGHT)


def depth_image(data, intrinsics, stamp_ns=0, frame_id='camera', unit=1.0) -> DepthImage:
    return DepthImage(data, unit, stamp_ns, frame_id, intrinsics)


def test_half_resolution_depth_with_scaled_intrinsics_is_used(scene):
    import cv2

    sequence, depth = scene
    camera = est_camera()
    small = cv2.resize(depth.clean[0], (WIDTH // 2, HEIGHT // 2), interpolation=cv2.INTER_NEAREST)
    objects = [MaskedObject(i, t.mask, t.box) for i, t in sequence.truth[0].items()]
    image = depth_image(small, camera.scaled(WIDTH // 2, HEIGHT // 2))
    estimates = frame_objects_3d(objects, image, camera, (WIDTH, HEIGHT), 'camera')
    assert max(centre_errors(estimates, depth.truth[0]).values()) < 0.01


@pytest.mark.parametrize(
    ('change', 'reason'),
    [
        (dict(width=640, height=400), 'is not the colour image 640x480 at any scale'),
        (dict(fx=640 * 1.05), "depth fx = 672.00 px differs from the colour camera's 640.00"),
        (dict(fy=600.0), 'depth fy = 600.00 px differs'),
        (dict(cx=330.0), "depth cx = 330.00 px differs from the colour camera's 319.50"),
        (dict(cy=250.0), 'depth cy = 250.00 px differs'),
    ],
)
def test_mismatched_sizes_or_intrinsics_are_refused_with_a_reason(scene, change, reason):
    from dataclasses import replace

    sequence, depth = scene
    camera = est_camera()
    wrong = replace(camera, **change)
    assert reason in fit_problem(wrong, camera)
    data = np.zeros((wrong.height, wrong.width), np.float32)
    objects = [MaskedObject(1, sequence.truth[0][1].mask, sequence.truth[0][1].box)]
    with pytest.raises(DepthError, match='not aligned'):
        frame_objects_3d(objects, depth_image(data, wrong), camera, (WIDTH, HEIGHT), 'camera')


def test_depth_that_cannot_be_checked_is_refused(scene):
    sequence, depth = scene
    camera = est_camera()
    objects = [MaskedObject(1, sequence.truth[0][1].mask, sequence.truth[0][1].box)]
    cases = [
        (depth_image(depth.clean[0], None), 'no depth camera_info'),
        (depth_image(depth.clean[0], camera.scaled(320, 240)), 'camera_info is for 320x240'),
        (depth_image(depth.clean[0], camera, frame_id='map'), "depth image is in frame 'map'"),
    ]
    for image, reason in cases:
        with pytest.raises(DepthError, match=reason):
            frame_objects_3d(objects, image, camera, (WIDTH, HEIGHT), 'camera')
    assert fit_problem(camera, camera) is None
    # A colour camera_info for another resolution than the frame is scaled, not refused.
    image = depth_image(depth.clean[0], camera)
    estimates = frame_objects_3d(objects, image, camera.scaled(1280, 960), (WIDTH, HEIGHT))
    assert estimates[1].has_3d


def test_bad_depth_arrays_are_rejected():
    with pytest.raises(DepthError, match="unsupported depth encoding 'rgb8'"):
        depth_array(np.zeros((4, 4), np.uint8), 'rgb8')
    with pytest.raises(DepthError, match='16UC1 depth must be uint16, got float32'):
        depth_array(np.zeros((4, 4), np.float32), '16UC1')
    with pytest.raises(DepthError, match='one channel'):
        depth_array(np.zeros((4, 4, 3), np.float32), '32FC1')
    with pytest.raises(DepthError, match='no usable focal lengths'):
        Intrinsics.from_k([0.0] * 9, 640, 480)


def test_pairing_takes_the_nearest_depth_within_the_window_and_counts_misses():
    pairer = DepthPairer(max_offset_ns=20_000_000, capacity=3)
    data = np.zeros((2, 2), np.float32)
    for ms in (0, 33, 66, 100):  # capacity 3: the first one is forgotten
        pairer.put(depth_image(data, None, stamp_ns=ms * 1_000_000))
    assert pairer.pair(70_000_000).stamp_ns == 66_000_000
    assert pairer.pair(105_000_000).stamp_ns == 100_000_000
    assert pairer.pair(0) is None  # 33 ms away: outside +-20 ms (0 ms was evicted)
    assert pairer.pair(200_000_000) is None
    assert (pairer.paired, pairer.unpaired) == (2, 2)
    assert pairer.nearest_offset_ns(200_000_000) == 100_000_000


def test_pairing_waits_briefly_for_a_partner_still_in_transit():
    import threading

    pairer = DepthPairer(max_offset_ns=5_000_000)
    data = np.zeros((2, 2), np.float32)
    assert pairer.pair(10**9, wait_s=5.0) is None  # no depth ever: no wait
    pairer.put(depth_image(data, None, stamp_ns=900_000_000))  # an older one
    assert pairer.pair(10**9) is None  # no wait asked: unpaired at once
    late = threading.Timer(0.05, pairer.put, [depth_image(data, None, stamp_ns=10**9)])
    late.start()
    assert pairer.pair(10**9, wait_s=5.0).stamp_ns == 10**9
    late.join()
    assert pairer.pair(2 * 10**9, wait_s=0.05) is None  # waited 50 ms, nothing came
    assert (pairer.paired, pairer.unpaired) == (1, 3)
