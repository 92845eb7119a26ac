"""The streaming tracker computes what the official SAM2VideoPredictor computes.

Same weights, same preprocessed frames, one object prompted on the first frame: the mask
logits agree step for step for 24 steps, past both the memory window (6 steps) and the
object-pointer window (15 steps), where pruning would show if it dropped anything read.
"""

from pathlib import Path

import cv2
import pytest
import torch
from tracker_fixtures import IMAGE_SIZE, moving_frames

from sam2_ros.models.sam2_model import load_sam2
from sam2_ros.models.streaming_tracker import StreamingTracker

pytestmark = pytest.mark.slow  # the official predictor and ours, side by side

STEPS = 24


@pytest.mark.timeout(600)
@pytest.mark.parametrize('prompt', ['points', 'box'])
def test_logits_match_sam2_video_predictor(tmp_path: Path, prompt):
    frames = moving_frames(STEPS)
    kwargs = (
        dict(points=[[35.0, 45.0], [120.0, 100.0]], labels=[1, 0])
        if prompt == 'points'
        else dict(box=[18.0, 28.0, 55.0, 62.0])
    )

    # The official predictor, on its own model instance built with the same seed.
    # fp32 on both sides: the predictor below runs without autocast, and precision auto is
    # bf16 on a CPU with native bf16.
    official_model = load_sam2(
        'tiny', untrained=True, device='cpu', precision='fp32', image_size=IMAGE_SIZE
    ).model
    for i, frame in enumerate(frames):
        cv2.imwrite(str(tmp_path / f'{i:05d}.jpg'), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    ours = StreamingTracker(
        load_sam2('tiny', untrained=True, device='cpu', precision='fp32', image_size=IMAGE_SIZE)
    )

    with torch.inference_mode():
        state = official_model.init_state(str(tmp_path))
        # Identical inputs: the tracker's own preprocessing of the exact frames, instead of
        # the predictor's decoding of lossy JPEGs.
        state['images'] = torch.cat([ours._preprocess(f) for f in frames])
        state['cached_features'] = {}
        official_model.add_new_points_or_box(
            state,
            frame_idx=0,
            obj_id=1,
            points=kwargs.get('points'),
            labels=kwargs.get('labels'),
            box=kwargs.get('box'),
        )
        expected = {}
        for frame_idx, _, _ in official_model.propagate_in_video(state):
            outputs = state['output_dict_per_obj'][0]
            out = outputs['cond_frame_outputs'].get(frame_idx) or outputs[
                'non_cond_frame_outputs'
            ].get(frame_idx)
            expected[frame_idx] = out['pred_masks'][0, 0].clone()
    assert sorted(expected) == list(range(STEPS))

    ours.step(frames[0])
    got = {0: ours.add_object(obj_id=1, **kwargs).logits}
    for i in range(1, STEPS):
        got[i] = ours.step(frames[i]).objects[1].logits

    worst = max(float((got[i] - expected[i]).abs().max()) for i in range(STEPS))
    for i in range(STEPS):
        torch.testing.assert_close(got[i], expected[i], atol=1e-4, rtol=1e-4, msg=f'step {i}')
    assert worst < 1e-4
    # Untrained weights still give varied logits; a constant (e.g. "no object") output
    # would make the comparison meaningless.
    spreads = [float(got[i].max() - got[i].min()) for i in range(STEPS)]
    assert min(spreads) > 0.1, spreads
    print(f'max |diff| over {STEPS} steps: {worst:.3g}; smallest logit spread {min(spreads):.3g}')
    # Pruning kept the tracker bounded while the predictor kept all 24 frames.
    assert ours.retained_state().memory_frames == 7
    assert len(state['output_dict_per_obj'][0]['non_cond_frame_outputs']) == STEPS - 1
