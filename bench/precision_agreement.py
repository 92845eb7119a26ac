"""Masks and logits of each precision setting against fp32, and its step time, in one run.

Same seeded weights, same frames, same box prompts: an fp32 tracker and one tracker per
candidate setting each run their own memory (closed loop, as in the node), step by step
interleaved. Per candidate it prints the mask IoU against fp32 (mean and minimum over steps and
objects; two empty masks count as agreeing), the mean and maximum absolute difference of the
low-resolution mask logits, the share of fp32 masks that are empty or full (with untrained
weights many are degenerate, which makes agreement easier than with trained ones: read these
numbers as an upper bound), and the median step time with its speed-up over fp32.

    python bench/precision_agreement.py [--steps 50] [--image-size 1024] [--objects 1]
        [--precisions "bf16;auto"]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
import warnings

import numpy as np
from step_profile import cpu_summary, moving_frames, start_tracker
import torch

from sam2_ros.models.sam2_model import load_sam2

BOUND = 0.98  # mean mask IoU against fp32 that `precision: auto` must keep


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Return the IoU of two boolean masks (1 when both are empty)."""
    union = np.count_nonzero(a | b)
    return 1.0 if union == 0 else np.count_nonzero(a & b) / union


def main() -> None:
    """Run fp32 and the candidates side by side and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--steps', type=int, default=50)
    parser.add_argument('--image-size', type=int, default=1024)
    parser.add_argument('--objects', type=int, default=1)
    parser.add_argument('--precisions', default='bf16;auto', help="settings separated by ';'")
    parser.add_argument('--model', default='tiny')
    parser.add_argument('--device', default='cpu')
    args = parser.parse_args()
    warnings.filterwarnings('ignore')
    logging.basicConfig(level=logging.ERROR)
    frames = moving_frames(args.steps + 1)
    names = ['fp32', *[p for p in args.precisions.split(';') if p]]
    loaded = {
        n: load_sam2(
            args.model, untrained=True, device=args.device, precision=n, image_size=args.image_size
        )
        for n in names
    }
    trackers = {n: start_tracker(loaded[n], frames, args.objects) for n in names}
    times = {n: [] for n in names}
    ious = {n: [] for n in names}
    logit_mean = {n: [] for n in names}
    logit_max = {n: 0.0 for n in names}
    degenerate = 0
    for i, frame in enumerate(frames[1:]):
        results = {}
        for n in names if i % 2 == 0 else names[::-1]:
            start = time.perf_counter()
            results[n] = trackers[n].step(frame)
            times[n].append(time.perf_counter() - start)
        for obj_id, ref in results['fp32'].objects.items():
            degenerate += int(not ref.mask.any() or ref.mask.all())
            for n in names[1:]:
                other = results[n].objects[obj_id]
                ious[n].append(iou(ref.mask, other.mask))
                diff = (other.logits.float() - ref.logits.float()).abs()
                logit_mean[n].append(float(diff.mean()))
                logit_max[n] = max(logit_max[n], float(diff.max()))
    total = args.steps * args.objects
    print(f'SAM 2.1 {args.model}, UNTRAINED weights: agreement is an optimistic estimate')
    print(f'{cpu_summary()}; torch {torch.__version__}, {torch.get_num_threads()} threads')
    print(
        f'{args.steps} steps at {args.image_size}px, {args.objects} object(s), 640x480 frames; '
        f'fp32 masks empty or full: {degenerate}/{total}; bound: mean IoU >= {BOUND}'
    )
    fp32_median = statistics.median(times['fp32'])
    print(
        '\n| precision | mean IoU | min IoU | mean abs logit diff | max abs logit diff | '
        'step ms | speed-up vs fp32 |'
    )
    print('|---|---|---|---|---|---|---|')
    print(f'| fp32 | 1 | 1 | 0 | 0 | {1000 * fp32_median:.0f} | 1.00 |')
    for n in names[1:]:
        median = statistics.median(times[n])
        label = n if n != 'auto' else f'auto = {loaded[n].precision}'
        print(
            f'| {label} | {np.mean(ious[n]):.4f} | {np.min(ious[n]):.4f} | '
            f'{np.mean(logit_mean[n]):.3f} | {logit_max[n]:.2f} | {1000 * median:.0f} | '
            f'{fp32_median / median:.2f} |'
        )


if __name__ == '__main__':
    main()
