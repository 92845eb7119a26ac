import cv2
import numpy as np
import pytest

from sam2_ros.core.drift import mask_iou
from sam2_ros.core.flow import IDENTITY, Anchor, FlowPropagator

H, W = 480, 640


@pytest.fixture(scope='module')
def scene():
    rng = np.random.default_rng(0)
    background = cv2.GaussianBlur(rng.integers(0, 256, (H, W, 3), dtype=np.uint8), (5, 5), 0)
    patch = cv2.GaussianBlur(rng.integers(0, 256, (90, 90, 3), dtype=np.uint8), (3, 3), 0)
    return background, patch


def _render(scene, placements):
    background, patch = scene
    frame = background.copy()
    masks = {}
    for obj_id, (x, y) in placements.items():
        visible = frame[y : y + 90, x : x + 90]  # clipped at the image border
        visible[:] = patch[: visible.shape[0], : visible.shape[1]]
        mask = np.zeros((H, W), bool)
        mask[y : y + 90, x : x + 90] = True
        masks[obj_id] = mask
    return frame, masks


def test_translation_of_several_objects_is_followed(scene):
    flow = FlowPropagator()
    start = {1: (40, 60), 2: (250, 200), 3: (450, 300)}
    moved = {k: (x + 6, y - 4) for k, (x, y) in start.items()}
    f0, m0 = _render(scene, start)
    f1, m1 = _render(scene, moved)
    out = flow.propagate(flow.prepare(f0), flow.prepare(f1), m0)
    for obj_id, prop in out.items():
        assert mask_iou(prop.mask, m1[obj_id]) > 0.95
        assert prop.confidence > 0.5
        assert prop.motion_px == pytest.approx(np.hypot(6, 4), abs=1.0)
        assert prop.matrix is not None and prop.inliers >= 6


def test_rotation_and_scale_are_followed(scene):
    flow = FlowPropagator()
    f0, m0 = _render(scene, {1: (275, 195)})
    matrix = cv2.getRotationMatrix2D((320, 240), 6, 1.06)
    f1 = cv2.warpAffine(f0, matrix, (W, H))
    m1 = cv2.warpAffine(m0[1].view(np.uint8), matrix, (W, H), flags=cv2.INTER_NEAREST) > 0
    prop = flow.propagate(flow.prepare(f0), flow.prepare(f1), m0)[1]
    assert mask_iou(prop.mask, m1) > 0.95
    assert prop.scale_change == pytest.approx(1.06, abs=0.02)


def test_textureless_region_reports_no_confidence(scene):
    flow = FlowPropagator()
    flat = np.full((H, W, 3), 128, np.uint8)
    mask = np.zeros((H, W), bool)
    mask[100:200, 100:200] = True
    prop = flow.propagate(flow.prepare(flat), flow.prepare(flat), {1: mask})[1]
    assert prop.confidence == 0.0 and prop.matrix is None
    assert np.array_equal(prop.mask, mask)  # left in place for the scheduler to fix


def test_motion_too_large_for_flow_reports_no_confidence(scene):
    # 40 px in one frame on fine noise texture: flow fails, and says so (SAM 2 takes over)
    flow = FlowPropagator()
    f0, m0 = _render(scene, {1: (200, 200)})
    f1, _ = _render(scene, {1: (240, 200)})
    assert flow.propagate(flow.prepare(f0), flow.prepare(f1), m0)[1].confidence < 0.3


def test_object_covered_in_the_next_frame_loses_confidence(scene):
    flow = FlowPropagator()
    f0, m0 = _render(scene, {1: (200, 150)})
    f1 = f0.copy()
    f1[140:260, 190:310] = np.random.default_rng(5).integers(0, 256, (120, 120, 3), np.uint8)
    prop = flow.propagate(flow.prepare(f0), flow.prepare(f1), m0)[1]
    assert prop.confidence < 0.3


def test_empty_mask_and_leaving_the_image(scene):
    flow = FlowPropagator()
    f0, m0 = _render(scene, {1: (540, 200)})
    f1, _ = _render(scene, {1: (555, 200)})
    out = flow.propagate(flow.prepare(f0), flow.prepare(f1), {1: m0[1], 2: np.zeros((H, W), bool)})
    assert not out[2].mask.any() and out[2].confidence == 0.0
    # partly outside now: the warped mask is clipped to the image
    assert out[1].mask.sum() < m0[1].sum()
    assert out[1].mask[:, -1].any()


def test_anchored_masks_do_not_erode_over_many_frames(scene):
    # 20 frames of slow rotation, zoom and drift. Warping the keyframe mask once by the
    # composed motion (the anchor) keeps it; re-warping the previous mask every frame
    # resamples the boundary each time and erodes it (measured: IoU 0.998 against 0.940).
    background, _ = scene
    yy, xx = np.mgrid[:H, :W]
    keyframe_mask = ((xx - 320) / 110) ** 2 + ((yy - 240) / 70) ** 2 <= 1

    def frame(i):
        matrix = cv2.getRotationMatrix2D((320, 240), 0.7 * i, 1.0 + 0.004 * i)
        matrix[:, 2] += (0.6 * i, 0.3 * i)
        image = cv2.warpAffine(background, matrix, (W, H), borderMode=cv2.BORDER_REFLECT)
        truth = cv2.warpAffine(keyframe_mask.view(np.uint8), matrix, (W, H), flags=0) > 0
        return image, truth

    flow = FlowPropagator()
    previous = flow.prepare(frame(0)[0])
    anchored, rewarped = keyframe_mask, keyframe_mask
    anchor = Anchor(keyframe_mask, IDENTITY)
    for i in range(1, 21):
        image, truth = frame(i)
        current = flow.prepare(image)
        with_anchor = flow.propagate(previous, current, {1: anchored}, {1: anchor})[1]
        anchored = with_anchor.mask
        rewarped = flow.propagate(previous, current, {1: rewarped})[1].mask
        anchor = Anchor(keyframe_mask, with_anchor.anchor_matrix)
        previous = current
    assert mask_iou(anchored, truth) > 0.99
    assert mask_iou(anchored, truth) > mask_iou(rewarped, truth) + 0.03
