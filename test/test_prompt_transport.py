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
    flat = [np.full((120, 160, 3), 90, np.uint8) for _ in range(3)]  # no texture to track
    prompt = make_prompt(160, 120, points=[[80, 60]], labels=[1])
    with pytest.raises(PromptError, match='could not be followed through the 2 frames'):
        carry_prompt(prompt, flat, FlowPropagator())


def test_a_size_change_is_rejected():
    prompt = make_prompt(160, 120, points=[[35, 45]], labels=[1])
    with pytest.raises(PromptError, match='image size changed'):
        carry_prompt(prompt, [FRAMES[0], FRAMES[1][:100]], FlowPropagator())
