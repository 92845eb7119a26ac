"""Semi-synthetic sequences: real data (or the generated fallback), exact ground truth."""

import math
import time

import cv2
import numpy as np
import pytest

from sam2_ros.evaluation import synthetic
from sam2_ros.evaluation.synthetic import (
    GENERATED,
    REAL,
    ObjectSpec,
    OccluderSpec,
    SequenceSpec,
    Waypoint,
    generate,
    linear_path,
    pingpong_indices,
    shape_mask,
)

REAL_DATA = synthetic.OPENCV_DATA
HAVE_OPENCV_DOC = (REAL_DATA / 'vtest.avi').is_file()
W, H = 320, 240


def _centroid(mask):
    """Centroid in continuous pixel coordinates (pixel centres at +0.5)."""
    ys, xs = np.nonzero(mask)
    return xs.mean() + 0.5, ys.mean() + 0.5


def _phases(fractions):
    """Collapse visible fractions into runs of 'full', 'partial' and 'hidden'."""
    names = ['full' if f == 1.0 else 'hidden' if f == 0.0 else 'partial' for f in fractions]
    return [n for i, n in enumerate(names) if i == 0 or names[i - 1] != n]


def _read_video_frame(name, index, size):
    capture = cv2.VideoCapture(str(synthetic.OPENCV_DATA / name))
    for _ in range(index + 1):
        ok, bgr = capture.read()
        assert ok
    capture.release()
    return cv2.cvtColor(cv2.resize(bgr, size, interpolation=cv2.INTER_LINEAR), cv2.COLOR_BGR2RGB)


@pytest.fixture(scope='module')
def moderate():
    return synthetic.scenario('moderate_motion', 40, W, H)


def test_real_footage_and_photographs_are_used_when_installed():
    if not HAVE_OPENCV_DOC:
        pytest.skip(f'opencv-doc is not installed at {synthetic.OPENCV_DATA}')
    sequence = synthetic.scenario('translation', 6)
    assert sequence.source == REAL
    assert set(sequence.assets) == {'vtest.avi', 'orange.jpg'}
    assert set(sequence.assets.values()) == {REAL}
    # Outside the object, each frame is the real video frame, resized (read independently).
    start = sequence.spec.background_start
    for i in (0, 5):
        video = _read_video_frame('vtest.avi', start + i, (640, 480))
        outside = ~sequence.truth[i][1].mask
        assert np.array_equal(sequence.frames[i][outside], video[outside])
        # the object really covers the video there
        inside = sequence.truth[i][1].mask
        assert np.mean(np.any(sequence.frames[i][inside] != video[inside], axis=1)) > 0.95


def test_frames_are_rgb_and_objects_keep_their_colours(moderate):
    frame, truth = moderate.frames[0], moderate.truth[0]
    assert frame.dtype == np.uint8 and frame.shape == (H, W, 3) and frame.flags.c_contiguous
    orange = frame[truth[1].mask].mean(axis=0)  # an orange is red > green > blue in RGB
    assert orange[0] > orange[1] > orange[2]
    apple = frame[truth[2].mask].mean(axis=0)
    assert apple[0] > apple[1] and apple[0] > apple[2]


def test_fallback_to_generated_textures_without_opencv_doc(tmp_path, monkeypatch):
    sequence = synthetic.scenario('moderate_motion', 8, W, H, data_dir=tmp_path)
    assert sequence.source == GENERATED
    assert set(sequence.assets.values()) == {GENERATED}
    again = synthetic.scenario('moderate_motion', 8, W, H, data_dir=tmp_path)
    assert all(np.array_equal(a, b) for a, b in zip(sequence.frames, again.frames, strict=True))
    assert all(t.visible_fraction == 1.0 for t in sequence.truth[0].values())
    assert sequence.frames[0].std() > 20  # textured, so optical flow has something to track
    assert not np.array_equal(sequence.frames[0], sequence.frames[7])  # the camera pans
    # The default directory is read at call time, so it can be pointed elsewhere too.
    monkeypatch.setattr(synthetic, 'OPENCV_DATA', tmp_path)
    default = synthetic.scenario('moderate_motion', 8, W, H)
    assert default.source == GENERATED
    assert all(np.array_equal(a, b) for a, b in zip(default.frames, again.frames, strict=True))
    if HAVE_OPENCV_DOC:
        real = synthetic.scenario('moderate_motion', 8, W, H, data_dir=REAL_DATA)
        assert real.source == REAL and not np.array_equal(real.frames[0], default.frames[0])


def test_a_partial_install_is_reported_as_mixed(tmp_path):
    if not HAVE_OPENCV_DOC:
        pytest.skip(f'opencv-doc is not installed at {synthetic.OPENCV_DATA}')
    (tmp_path / 'vtest.avi').symlink_to(synthetic.OPENCV_DATA / 'vtest.avi')
    sequence = synthetic.scenario('translation', 3, W, H, data_dir=tmp_path)
    assert sequence.source == 'mixed'
    assert sequence.assets == {'vtest.avi': REAL, 'orange.jpg': GENERATED}


def test_generation_is_fast():
    start = time.perf_counter()
    sequence = synthetic.scenario('moderate_motion', 60)
    elapsed = time.perf_counter() - start
    assert len(sequence) == 60 and sequence.frames[0].shape == (480, 640, 3)
    assert elapsed < 2.0, f'60 frames at 640x480 took {elapsed:.2f} s'


def test_generation_is_deterministic(moderate):
    again = synthetic.scenario('moderate_motion', 40, W, H)
    assert again.spec == moderate.spec
    for i in range(40):
        assert np.array_equal(moderate.frames[i], again.frames[i])
        for gt_id, t in moderate.truth[i].items():
            assert np.array_equal(t.mask, again.truth[i][gt_id].mask)
            assert t.box == again.truth[i][gt_id].box
    other_seed = synthetic.scenario('moderate_motion', 2, W, H, seed=1)
    assert other_seed.spec.objects[0].path[0] != moderate.spec.objects[0].path[0]


def test_masks_are_exact_for_the_rendered_pixels():
    objects = (
        ObjectSpec('orange', 'ellipse', (60, 50), linear_path((100, 100), (6, 2), 10, 0.02, 3)),
        ObjectSpec('apple', 'star', (70, 70), linear_path((170, 120), (-5, 0), 10, -0.01, -4)),
    )
    occluder = OccluderSpec((140, 0, 160, 240), velocity=(1, 0))
    spec = SequenceSpec(objects, 10, W, H, 'tree.avi', (occluder,))
    sequence = generate(spec)
    background = generate(SequenceSpec((), 10, W, H, 'tree.avi'))
    for i in range(10):
        first, second = sequence.truth[i][1].mask, sequence.truth[i][2].mask
        assert not (first & second).any()  # visible masks never overlap
        changed = np.any(sequence.frames[i] != background.frames[i], axis=2)
        bar = np.zeros((H, W), bool)
        bar[:, 140 + i : 160 + i] = True
        # Only objects and the occluder change pixels, and the objects' pixels did change.
        assert not (changed & ~(first | second | bar)).any()
        objects_only = (first | second) & ~bar
        assert objects_only.any() and changed[objects_only].mean() > 0.95
        assert not ((first | second) & bar).any()  # the bar hides what is behind it
        for t in sequence.truth[i].values():
            ys, xs = np.nonzero(t.mask)
            assert t.box == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
            x0, y0, x1, y1 = t.amodal_box
            assert x0 <= t.box[0] and y0 <= t.box[1] and t.box[2] <= x1 and t.box[3] <= y1


def test_the_pose_is_the_centre_in_pixel_coordinates():
    # Scale 1 and an integral offset: the warp copies the shape exactly, so the mask is the
    # shape mask shifted to where the pose puts it (the centre of the sprite at x, y).
    spec = SequenceSpec(
        (ObjectSpec('apple', 'star', (41, 37), (Waypoint(0, 100.5, 60.5),)),), 1, W, H
    )
    truth = generate(spec).truth[0][1]
    expected = np.zeros((H, W), bool)
    expected[60 - 18 : 60 - 18 + 37, 100 - 20 : 100 - 20 + 41] = shape_mask('star', 41, 37)
    assert np.array_equal(truth.mask, expected)
    assert truth.visible_fraction == 1.0 and truth.in_frame_fraction == 1.0
    assert truth.class_id == 1 and truth.class_name == 'apple'


def test_translation_moves_at_the_requested_speed():
    sequence = synthetic.scenario('translation', 10, W, H, seed=3, speed=4.0)
    pose = sequence.spec.objects[0].pose
    centroids = [_centroid(t[1].mask) for t in sequence.truth]
    for i, (x, y) in enumerate(centroids):
        # a symmetric shape, placed to the nearest pixel
        assert abs(x - pose(i).x) <= 0.5 and abs(y - pose(i).y) <= 0.5
    travelled = math.hypot(*np.subtract(centroids[-1], centroids[0]))
    assert travelled / 9 == pytest.approx(4.0 * W / 640, abs=0.1)
    areas = [t[1].mask.sum() for t in sequence.truth]
    assert max(areas) - min(areas) <= 0.02 * max(areas)
    assert all(t[1].visible_fraction == 1.0 for t in sequence.truth)
    with pytest.raises(ValueError, match='leave the'):
        synthetic.scenario('translation', 100, W, H, speed=10.0)


@pytest.mark.parametrize('name', sorted(synthetic.SCENARIOS))
def test_every_scenario_builds_at_its_shortest_and_refuses_shorter(name):
    shortest = max(2, synthetic.SCENARIOS[name].min_frames)
    sequence = synthetic.scenario(name, shortest, W, H)
    assert len(sequence) == shortest and (sequence.width, sequence.height) == (W, H)
    if synthetic.SCENARIOS[name].min_frames > 1:
        with pytest.raises(ValueError, match=f'needs at least {shortest} frames'):
            synthetic.scenario(name, shortest - 1, W, H)


def test_an_unknown_scenario_is_refused_with_the_known_ones():
    with pytest.raises(ValueError, match='use one of translation, occlusion, crossing'):
        synthetic.scenario('spinning')


def test_scale_and_rotation_follow_the_path():
    path = (Waypoint(0, 160, 120, 1.0, 0.0), Waypoint(9, 160, 120, 1.5, 90.0))
    spec = SequenceSpec((ObjectSpec('baboon', 'rounded_rect', (80, 40), path),), 10, W, H)
    truth = generate(spec).truth
    x0, y0, x1, y1 = truth[0][1].box
    assert (x1 - x0, y1 - y0) == (80, 40)
    x0, y0, x1, y1 = truth[9][1].box  # turned a quarter and grown by half
    assert abs((x1 - x0) - 60) <= 2 and abs((y1 - y0) - 120) <= 2
    ratio = truth[9][1].mask.sum() / truth[0][1].mask.sum()
    assert ratio == pytest.approx(1.5**2, rel=0.03)
    mid = truth[4][1].box  # in between: 40 degrees, scale 1.22, a wider box than either side
    assert mid[2] - mid[0] > 80


def test_depth_decides_who_hides_whom():
    def crossing(front):
        objects = tuple(
            ObjectSpec(photo, 'ellipse', (80, 80), (Waypoint(0, x, 120),), depth=int(k == front))
            for k, (photo, x) in enumerate((('orange', 140), ('apple', 180)))
        )
        return generate(SequenceSpec(objects, 1, W, H)).truth[0]

    truth = crossing(front=0)
    assert truth[1].visible_fraction == 1.0 and 0 < truth[2].visible_fraction < 1
    truth = crossing(front=1)
    assert truth[2].visible_fraction == 1.0 and 0 < truth[1].visible_fraction < 1


def test_occlusion_by_a_bar_partial_then_full_then_reappearance():
    sequence = synthetic.scenario('occlusion', 30, W, H)
    orange = [t[1] for t in sequence.truth]
    assert _phases([t.visible_fraction for t in orange]) == [
        'full',
        'partial',
        'hidden',
        'partial',
        'full',
    ]
    hidden = [t for t in orange if t.visible_fraction == 0.0]
    # hidden by the bar, not out of view
    assert all(t.box is None and t.in_frame_fraction == 1.0 for t in hidden)
    assert all(t[2].visible_fraction == 1.0 for t in sequence.truth)  # the apple is never hidden
    assert {t.class_name for t in sequence.truth[0].values()} == {'orange', 'apple'}


def test_an_object_passing_in_front_hides_another():
    sequence = synthetic.scenario('crossing', 30, W, H)
    orange = [t[1].visible_fraction for t in sequence.truth]
    assert _phases(orange) == ['full', 'partial', 'hidden', 'partial', 'full']
    for t in sequence.truth:
        assert t[2].visible_fraction == 1.0  # the baboon is in front
        if t[1].visible_fraction == 0.0:  # the orange is right behind it
            ox0, oy0, ox1, oy1 = t[1].amodal_box
            bx0, by0, bx1, by1 = t[2].box
            assert bx0 <= ox0 and by0 <= oy0 and ox1 <= bx1 and oy1 <= by1


def test_exit_and_reentry_through_the_image_border():
    sequence = synthetic.scenario('exit_reentry', 30, W, H)
    apple = [t[1] for t in sequence.truth]
    assert _phases([t.in_frame_fraction for t in apple]) == [
        'full',
        'partial',
        'hidden',
        'partial',
        'full',
    ]
    for t in apple:
        assert t.visible_fraction == pytest.approx(t.in_frame_fraction)  # nothing occludes it
        if 0 < t.in_frame_fraction < 1:
            assert t.mask[:, -1].any() and t.amodal_box[2] > W  # cut by the right border
        if t.in_frame_fraction == 0:
            assert t.box is None and t.amodal_box is None and not t.mask.any()
    assert all(t[2].visible_fraction == 1.0 for t in sequence.truth)


def test_moderate_motion_is_moderate(moderate):
    unit = W / 640
    for gt_id in moderate.gt_ids:
        centroids = [_centroid(t[gt_id].mask) for t in moderate.truth]
        pairs = zip(centroids[:-1], centroids[1:], strict=True)
        steps = [math.hypot(*np.subtract(b, a)) for a, b in pairs]
        assert max(steps) <= 2.5 * unit + 0.75
        assert math.hypot(*np.subtract(centroids[-1], centroids[0])) > 2  # it does move
    for obj in moderate.spec.objects:
        assert all(0.9 <= w.scale <= 1.1 and abs(w.angle) <= 12 for w in obj.path)
        pairs = zip(obj.path[:-1], obj.path[1:], strict=True)
        assert max(abs(b.angle - a.angle) / (b.frame - a.frame) for a, b in pairs) < 1.0
    # each object has its own cell: always whole, never touching another or the border
    assert all(t.visible_fraction == 1.0 for frame in moderate.truth for t in frame.values())
    names = [moderate.truth[0][g].class_name for g in moderate.gt_ids]
    assert names == ['orange', 'apple', 'butterfly']
    assert moderate.class_names == synthetic.CLASS_NAMES


def test_short_videos_play_back_and_forth():
    assert pingpong_indices(9, 4) == [0, 1, 2, 3, 2, 1, 0, 1, 2]
    assert pingpong_indices(3, 1) == [0, 0, 0]
    if not HAVE_OPENCV_DOC:
        pytest.skip(f'opencv-doc is not installed at {synthetic.OPENCV_DATA}')
    capture = cv2.VideoCapture(str(synthetic.OPENCV_DATA / 'tree.avi'))
    length = 0
    while capture.read()[0]:
        length += 1
    capture.release()
    frames = generate(SequenceSpec((), 5, W, H, 'tree.avi', background_start=length - 3)).frames
    # video frames L-3, L-2, L-1, then back: L-2, L-3
    assert np.array_equal(frames[3], frames[1]) and np.array_equal(frames[4], frames[0])
    assert not np.array_equal(frames[0], frames[1])
    wrapped = generate(SequenceSpec((), 1, W, H, 'tree.avi', background_start=length + 2))
    direct = generate(SequenceSpec((), 1, W, H, 'tree.avi', background_start=2))
    assert np.array_equal(wrapped.frames[0], direct.frames[0])


@pytest.mark.parametrize(
    ('change', 'message'),
    [
        ({'num_frames': 0}, 'num_frames'),
        ({'background': 'nope.avi'}, 'unknown background'),
        ({'objects': (ObjectSpec('pear', 'ellipse', (9, 9), (Waypoint(0, 5, 5),)),)}, 'pear'),
        ({'objects': (ObjectSpec(0, 'blob', (9, 9), (Waypoint(0, 5, 5),)),)}, 'blob'),
        ({'objects': (ObjectSpec(0, 'star', (9, 9), ()),)}, 'waypoint'),
        (
            {'objects': (ObjectSpec(0, 'star', (9, 9), (Waypoint(5, 0, 0), Waypoint(1, 0, 0))),)},
            'sorted',
        ),
        ({'objects': (ObjectSpec(0, 'star', (9, 9), (Waypoint(0, 5, 5, 0.0),)),)}, 'scale'),
    ],
)
def test_invalid_specs_are_rejected(change, message):
    fields = {'objects': (), 'num_frames': 2, 'width': 64, 'height': 48}
    fields.update(change)
    with pytest.raises(ValueError, match=message):
        generate(SequenceSpec(**fields))
