"""Torch and OpenCV thread counts while SAM 2 and the frame path run at once, interleaved.

What the node does on a CPU: SAM 2 steps on a worker thread while the frame path (image
conversion, optical flow of every object) runs on every frame. Per setting (torch threads x
OpenCV threads) it runs both for a window of seconds: the worker steps the package's
StreamingTracker (untrained SAM 2.1 tiny, precision auto) back to back, the frame path runs
FlowPropagator on 640x480 frames paced at --fps. Settings go round-robin over several rounds;
printed: SAM 2 steps per second and the frame path's time per frame, p50 and p95 (ms).

    python bench/threads.py [--rounds 3] [--window 6] [--image-size 256] [--fps 30]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import threading
import time
import warnings

import cv2
import numpy as np
from step_profile import moving_frames, object_boxes, start_tracker
import torch

from sam2_ros.core.flow import FlowPropagator
from sam2_ros.models.sam2_model import load_sam2
from sam2_ros.models.threads import cpu_count


def box_mask(box, width=640, height=480) -> np.ndarray:
    """Return a boolean mask filling `box`."""
    mask = np.zeros((height, width), dtype=bool)
    x0, y0, x1, y1 = (int(v) for v in box)
    mask[y0:y1, x0:x1] = True
    return mask


def window(tracker, frames, seconds: float, fps: float) -> tuple[float, list[float]]:
    """Run SAM 2 (worker) and the frame path together; return steps/s and path times."""
    stop = threading.Event()
    steps = []

    def worker():
        i = 0
        while not stop.is_set():
            tracker.step(frames[i % len(frames)])
            steps.append(time.perf_counter())
            i += 1

    flow = FlowPropagator()
    masks = {k: box_mask(b) for k, b in enumerate(object_boxes(3))}
    thread = threading.Thread(target=worker)
    start = time.perf_counter()
    thread.start()
    path_times = []
    previous = flow.prepare(frames[0])
    i = 1
    while time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        bgr = cv2.cvtColor(frames[i % len(frames)], cv2.COLOR_RGB2BGR)  # the image conversion
        current = flow.prepare(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        flow.propagate(previous, current, masks)
        previous = current
        path_times.append(time.perf_counter() - t0)
        i += 1
        time.sleep(max(0.0, 1.0 / fps - (time.perf_counter() - t0)))
    stop.set()
    thread.join()
    elapsed = time.perf_counter() - start
    return len(steps) / elapsed, path_times


def main() -> None:
    """Measure every setting round-robin and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--window', type=float, default=6.0, help='seconds per setting')
    parser.add_argument('--image-size', type=int, default=256)
    parser.add_argument('--fps', type=float, default=30.0)
    args = parser.parse_args()
    warnings.filterwarnings('ignore')
    logging.basicConfig(level=logging.ERROR)
    cores = cpu_count()
    settings = sorted({(t, c) for t in (cores, max(1, cores - 1)) for c in (cores, 1)})[::-1]
    frames = moving_frames(32)
    loaded = load_sam2('tiny', untrained=True, device='cpu', image_size=args.image_size)
    tracker = start_tracker(loaded, frames, 1)
    results = {s: ([], []) for s in settings}
    for r in range(args.rounds):
        for setting in settings if r % 2 == 0 else settings[::-1]:
            torch.set_num_threads(setting[0])
            cv2.setNumThreads(setting[1])
            rate, path = window(tracker, frames, args.window, args.fps)
            results[setting][0].append(rate)
            results[setting][1].extend(path)
    print(f'{cores} cores; SAM 2.1 tiny UNTRAINED at {args.image_size}px ({loaded.precision}),')
    print(
        f'frame path: 640x480 conversion + flow of 3 objects at {args.fps:g} fps; '
        f'{args.rounds} rounds x {args.window:g} s per setting, interleaved'
    )
    print('\n| torch threads | OpenCV threads | SAM 2 steps/s | frame path p50 ms | p95 ms |')
    print('|---|---|---|---|---|')
    for setting in settings:
        rates, path = results[setting]
        p95 = float(np.percentile(path, 95))
        print(
            f'| {setting[0]} | {setting[1]} | {statistics.median(rates):.2f} | '
            f'{1000 * statistics.median(path):.1f} | {1000 * p95:.1f} |'
        )


if __name__ == '__main__':
    main()
