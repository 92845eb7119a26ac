import numpy as np
import pytest

from sam2_ros.core.prompts import PromptError, make_prompt, scale_from_canvas


def test_valid_prompt_is_normalised():
    prompt = make_prompt(160, 120, points=[[0, 0], [160, 120]], labels=[1, 0], box=[1, 2, 30, 40])
    assert prompt.points.dtype == np.float32 and prompt.points.shape == (2, 2)
    assert prompt.labels.tolist() == [1, 0]
    assert prompt.box.tolist() == [1, 2, 30, 40]
    box_only = make_prompt(160, 120, box=[1, 2, 30, 40])
    assert box_only.points.shape == (0, 2) and box_only.labels.shape == (0,)
    mask = np.zeros((120, 160), np.uint8)
    mask[5, 5] = 1
    assert make_prompt(160, 120, mask=mask).mask.dtype == np.bool_


def test_mask_cannot_be_combined_with_clicks():
    mask = np.ones((120, 160), bool)
    with pytest.raises(PromptError, match='cannot be combined'):
        make_prompt(160, 120, points=[[3, 3]], labels=[1], mask=mask)


def test_points_must_be_pairs():
    with pytest.raises(PromptError, match=r'shape \(N, 2\)'):
        make_prompt(160, 120, points=[[1, 2, 3]], labels=[1])


def test_canvas_scaling():
    scaled = scale_from_canvas([[320, 240], [0, 0]], canvas_size=(640, 480), image_size=(160, 120))
    np.testing.assert_allclose(scaled, [[80, 60], [0, 0]])
    with pytest.raises(PromptError, match='canvas size must be positive'):
        scale_from_canvas([[1, 1]], canvas_size=(0, 480), image_size=(160, 120))


def test_the_canvas_edge_maps_exactly_onto_the_image_edge():
    # A click on a canvas's right or bottom edge must stay inside the image: with
    # x * (iw / cw), widths such as 29, 58 or 79 against 640 gave 640.0000000000001.
    for width in range(1, 2049):
        height = max(1, width * 3 // 4)
        edge = np.array([[width, height]], dtype=np.float32)  # AddPrompt points are float32
        scaled = scale_from_canvas(edge, canvas_size=(width, height), image_size=(640, 480))
        assert scaled.tolist() == [[640.0, 480.0]], (width, scaled)
        make_prompt(640, 480, points=scaled, labels=[1])
