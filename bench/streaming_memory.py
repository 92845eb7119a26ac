"""Streaming tracker vs. the official SAM2VideoPredictor: retained memory and step time.

Runs the same frames, weights and prompt through both, side by side in one process, one
step of each in turn (which goes first alternates), so load on the machine hits both alike, and
prints the state each retains at frames 50/100/200/300 (bytes of tensors kept between
steps), the growth slope of each from frame 100 on, and the per-step time ratio. The
official path is the seed's loop: init_state on the whole video, add_new_points_or_box on
frame 0, propagate_in_video. Weights are untrained (no checkpoint is reachable here); compute
cost does not depend on weight values.

    python bench/streaming_memory.py [--frames 300] [--image-size 256] [--device cpu]
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
import statistics
import tempfile
import time
import warnings

os.environ.setdefault('TQDM_DISABLE', '1')  # the predictor's progress bars

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from sam2_ros.models.sam2_model import load_sam2  # noqa: E402
from sam2_ros.models.streaming_tracker import (  # noqa: E402
    StreamingTracker,
    collect_storages,
)

CHECKPOINTS = (50, 100, 200, 300)


def moving_frames(count: int, width: int = 320, height: int = 240) -> list[np.ndarray]:
    """Deterministic frames: a textured square moving over a textured background."""
    rng = np.random.default_rng(0)
    background = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    patch = rng.integers(0, 256, size=(48, 48, 3), dtype=np.uint8)
    frames = []
    for i in range(count):
        frame = background.copy()
        x = 20 + (3 * i) % (width - 90)
        y = 30 + (2 * i) % (height - 90)
        frame[y : y + 48, x : x + 48] = patch
        frames.append(frame)
    return frames


def tensor_bytes(*roots) -> int:
    """Bytes of every distinct tensor storage reachable from `roots` through dicts/lists."""
    seen: dict[int, int] = {}
    for root in roots:
        collect_storages(root, seen)
    return sum(seen.values())


def official_steps(loaded, frames, point, directory: Path):
    """Run the seed's loop, one frame per next(): yield (frame, seconds, retained)."""
    model = loaded.model
    for i, frame in enumerate(frames):
        cv2.imwrite(str(directory / f'{i:05d}.jpg'), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))

    def advance(propagation):  # the contexts only around the predictor's own work
        with torch.inference_mode(), loaded.autocast():
            return next(propagation, None)

    with torch.inference_mode(), loaded.autocast():
        state = model.init_state(str(directory))
        model.add_new_points_or_box(state, 0, 1, points=[point], labels=[1])
    propagation = model.propagate_in_video(state)
    advance(propagation)  # frame 0 only returns the stored prompt output
    while True:
        start = time.perf_counter()
        item = advance(propagation)
        if item is None:
            return
        seconds = time.perf_counter() - start
        frame_idx = item[0]
        retained = None
        if frame_idx + 1 in CHECKPOINTS:
            outputs = tensor_bytes(state['output_dict_per_obj'], state['constants'])
            features = tensor_bytes([bo for _, bo in state['cached_features'].values()])
            retained = (outputs, outputs + features, tensor_bytes(state))
        yield frame_idx, seconds, retained


def streaming_steps(loaded, frames, point):
    """Run the streaming tracker, one frame per next(): yield (frame, seconds, retained)."""
    tracker = StreamingTracker(loaded)
    tracker.step(frames[0])
    tracker.add_object(points=[point], labels=[1])
    for i, frame in enumerate(frames[1:], start=1):
        start = time.perf_counter()
        tracker.step(frame)
        seconds = time.perf_counter() - start
        retained = None
        if i + 1 in CHECKPOINTS:
            report = tracker.retained_state()
            retained = (report.bytes - report.feature_bytes, report.bytes)
        yield i, seconds, retained


def interleave(first, second) -> tuple[tuple[list, dict], tuple[list, dict]]:
    """Step two generators in turn (alternating which goes first); collect times, retained."""
    runs = (([], {}), ([], {}))
    generators = (first, second)
    step = 0
    while True:
        order = (0, 1) if step % 2 == 0 else (1, 0)
        items = {}
        for k in order:
            item = next(generators[k], None)
            if item is None:
                return runs
            items[k] = item
        for k, (frame_idx, seconds, retained) in items.items():
            runs[k][0].append(seconds)
            if retained is not None:
                runs[k][1][frame_idx + 1] = retained
        step += 1


def main() -> None:
    """Run both and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--frames', type=int, default=300)
    parser.add_argument('--image-size', type=int, default=256)
    parser.add_argument('--size', default='tiny')
    parser.add_argument('--device', default='auto')
    args = parser.parse_args()
    warnings.filterwarnings('ignore', message="cannot import name '_C'")
    logging.basicConfig(level=logging.WARNING, format='%(levelname)s %(message)s')
    frames = moving_frames(args.frames)
    point = (44.0, 54.0)

    # Two instances with identical (seeded) weights: the tracker configures its own model.
    def build():
        return load_sam2(args.size, untrained=True, device=args.device, image_size=args.image_size)

    loaded, official_loaded = build(), build()
    print(f'model: {loaded.describe()}')
    print(f'{args.frames} frames of {frames[0].shape[1]}x{frames[0].shape[0]}, one object\n')

    with tempfile.TemporaryDirectory() as directory:  # step by step, in turn: same load
        (ours_times, ours), (official_times, official) = interleave(
            streaming_steps(loaded, frames, point),
            official_steps(official_loaded, frames, point, Path(directory)),
        )

    mib = 1024.0**2
    print('retained between steps, MiB. memory: per-object outputs; +features: plus the')
    print("current frame's image features; official all: its whole state, video included")
    header = ('frame', 'streaming', 'official', 'ratio', 'stream+feat', 'official+feat', 'all')
    print('{:>6} {:>10} {:>9} {:>6} {:>12} {:>14} {:>9}'.format(*header))
    for n in CHECKPOINTS:
        if n in ours:
            row = (
                ours[n][0] / mib,
                official[n][0] / mib,
                official[n][0] / ours[n][0],
                ours[n][1] / mib,
                official[n][1] / mib,
                official[n][2] / mib,
            )
            print('{:>6} {:>10.2f} {:>9.2f} {:>6.2f} {:>12.2f} {:>14.2f} {:>9.2f}'.format(n, *row))
    marks = [n for n in CHECKPOINTS if n in ours and n >= 100]
    if len(marks) >= 2:
        first, last = marks[0], marks[-1]
        ours_slope = (ours[last][0] - ours[first][0]) / (last - first)
        official_slope = (official[last][0] - official[first][0]) / (last - first)
        print(f'\ngrowth from frame {first} to {last}, bytes per frame:')
        print(f'  streaming {ours_slope:,.0f}   official {official_slope:,.0f}')
        ratio = (
            'infinite (streaming does not grow)'
            if ours_slope == 0
            else (f'{official_slope / ours_slope:.1f}')
        )
        print(f'  slope ratio official/streaming: {ratio}')
    ours_median = statistics.median(ours_times)
    official_median = statistics.median(official_times)
    print(
        f'\nper-step time, median: streaming {1000 * ours_median:.1f} ms, official '
        f'{1000 * official_median:.1f} ms, ratio official/streaming '
        f'{official_median / ours_median:.2f}'
    )
    print('(untrained weights: timings are honest, masks are meaningless)')


if __name__ == '__main__':
    main()
