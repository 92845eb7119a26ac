"""Carrying a prompt from the clicked frame to the newest frame (`carry_prompt`)."""

import numpy as np
import pytest
from tracker_fixtures import moving_frames

from sam2_ros.core.flow import FlowPropagator
from sam2_ros.core.prompt_transport import carry_prompt
from sam2_ros.core.prompts import PromptError, make_prompt

FRAMES = moving_frames(12)  # a 30 px square moving (+2, +1) px per frame over a static scene


def test_foreground_moves_with_the_object_background_stays_with_the_scene():
    prompt = make_prompt(
        160, 120, points=[[35, 45], [130, 100]], labels=[1, 0], box=[20, 30, 50, 60]
    )
    carried = carry_prompt(prompt, FRAMES[:9], FlowPropagator())
    assert carried.frames == 8
    np.testing.assert_allclose(carried.prompt.points[0], [35 + 16, 45 + 8], atol=1.0)
    np.testing.assert_allclose(carried.prompt.points[1], [130, 100], atol=1.0)
    np.testing.assert_allclose(carried.prompt.box, [36, 38, 66, 68], atol=1.5)
    assert carried.prompt.labels.tolist() == [1, 0]
    assert carried.motion_px == pytest.approx(np.hypot(16, 8), abs=1.5)


def test_a_mask_prompt_is_warped_and_a_single_frame_is_unchanged():
    mask = np.zeros((120, 160), dtype=bool)
    mask[30:60, 20:50] = True
    prompt = make_prompt(160, 120, mask=mask)
    moved = carry_prompt(prompt, FRAMES[:5], FlowPropagator()).prompt.mask
    expected = np.zeros_like(mask)
    expected[34:64, 28:58] = True
    assert (moved & expected).sum() / (moved | expected).sum() > 0.9
    same = carry_prompt(prompt, FRAMES[:1], FlowPropagator())
    assert same.frames == 0 and same.prompt is prompt


def test_an_object_that_cannot_be_followed_is_rejected():
    # No texture to track, and the frames do change (the light flickers): no way to tell.
    flat = [np.full((120, 160, 3), level, np.uint8) for level in (90, 140, 60)]
    prompt = make_prompt(160, 120, points=[[80, 60]], labels=[1])
    with pytest.raises(PromptError, match='could not be followed through the 2 frames'):
        carry_prompt(prompt, flat, FlowPropagator())


@pytest.mark.parametrize('side', [10, 20, 40])
def test_a_prompt_on_a_republished_frame_is_carried_unchanged(side):
    """The console stamps every prompt; a still camera on a plain wall must be promptable."""
    wall = np.full((120, 160, 3), 200, np.uint8)
    wall[:, :20] = 40  # a little texture far away
    box = [70, 50, 70 + side, 50 + side]
    prompt = make_prompt(160, 120, points=[[75, 55]], labels=[1], box=box)
    carried = carry_prompt(prompt, [wall.copy() for _ in range(6)], FlowPropagator())
    assert carried.frames == 5 and carried.motion_px == 0.0
    np.testing.assert_array_equal(carried.prompt.box, box)
    np.testing.assert_array_equal(carried.prompt.points, [[75, 55]])


def test_sensor_noise_on_a_still_camera_is_not_motion():
    rng = np.random.default_rng(0)
    wall = np.full((120, 160, 3), 180, np.int16)
    frames = [
        np.clip(wall + rng.integers(-3, 4, wall.shape), 0, 255).astype(np.uint8) for _ in range(5)
    ]
    prompt = make_prompt(160, 120, box=[60, 40, 70, 50])
    carried = carry_prompt(prompt, frames, FlowPropagator())
    np.testing.assert_array_equal(carried.prompt.box, [60, 40, 70, 50])


def test_a_still_plain_region_stays_while_something_else_moves():
    frames = [f.copy() for f in FRAMES[:6]]
    for frame in frames:
        frame[95:120, 110:160] = 170  # a plain patch away from the moving square
    prompt = make_prompt(160, 120, box=[125, 100, 135, 110])
    carried = carry_prompt(prompt, frames, FlowPropagator())
    np.testing.assert_allclose(carried.prompt.box, [125, 100, 135, 110], atol=0.5)
    moving = carry_prompt(make_prompt(160, 120, box=[20, 30, 50, 60]), frames, FlowPropagator())
    np.testing.assert_allclose(moving.prompt.box, [30, 35, 60, 65], atol=1.5)


def test_a_size_change_is_rejected():
    prompt = make_prompt(160, 120, points=[[35, 45]], labels=[1])
    with pytest.raises(PromptError, match='image size changed'):
        carry_prompt(prompt, [FRAMES[0], FRAMES[1][:100]], FlowPropagator())
