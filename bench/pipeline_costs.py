"""What keyframing buys: flow propagation cost versus a SAM 2 keyframe, and effective FPS.

Prints, in one run on this machine:
- the per-frame cost of optical-flow propagation at 640x480 for 1, 3 and 5 objects, next to
  the cost of one SAM 2.1 tiny step at the model's input size, and their ratio;
- effective frames per second of the whole pipeline (real SAM 2.1 tiny, untrained weights)
  at keyframe intervals 1, 2, 5 and 10.

Weights are untrained (no checkpoint is reachable here); compute does not depend on them.

    python bench/pipeline_costs.py [--image-size 1024] [--frames 20]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time

import cv2
import numpy as np

from sam2_ros.core.drift import DriftConfig
from sam2_ros.core.flow import FlowPropagator
from sam2_ros.core.keyframes import KeyframeConfig
from sam2_ros.core.pipeline import PipelineConfig, TrackingPipeline
from sam2_ros.models.sam2_model import load_sam2
from sam2_ros.models.streaming_tracker import StreamingTracker

WIDTH, HEIGHT = 640, 480
OBJECT_SIZE = 90


def scene(count: int, objects: int) -> tuple[list[np.ndarray], list[tuple[int, int]]]:
    """Textured objects drifting over a textured background (deterministic)."""
    rng = np.random.default_rng(1)
    background = cv2.GaussianBlur(
        rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8), (5, 5), 0
    )
    patches = [
        cv2.GaussianBlur(rng.integers(0, 256, (OBJECT_SIZE,) * 2 + (3,), np.uint8), (3, 3), 0)
        for _ in range(objects)
    ]
    starts = [(40 + 110 * k, 60 + 150 * (k % 3)) for k in range(objects)]
    frames = []
    for i in range(count):
        frame = background.copy()
        for (x, y), patch in zip(starts, patches, strict=True):
            x, y = x + 2 * i % 60, y + i % 40
            frame[y : y + OBJECT_SIZE, x : x + OBJECT_SIZE] = patch
        frames.append(frame)
    return frames, starts


def flow_cost(objects: int, repeats: int = 200) -> float:
    """Median ms per frame to prepare the frame and propagate `objects` masks."""
    frames, starts = scene(2, objects)
    masks = {}
    for k, (x, y) in enumerate(starts, start=1):
        mask = np.zeros((HEIGHT, WIDTH), bool)
        mask[y : y + OBJECT_SIZE, x : x + OBJECT_SIZE] = True
        masks[k] = mask
    flow = FlowPropagator()
    previous = flow.prepare(frames[0])
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        current = flow.prepare(frames[1])
        flow.propagate(previous, current, masks)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def sam2_step_cost(loaded, steps: int = 3) -> float:
    """Median ms of one SAM 2 streaming step (one object) on a 640x480 frame."""
    frames, starts = scene(steps + 1, 1)
    tracker = StreamingTracker(loaded)
    tracker.step(frames[0])
    x, y = starts[0]
    tracker.add_object(box=[x, y, x + OBJECT_SIZE, y + OBJECT_SIZE])
    times = []
    for frame in frames[1:]:
        start = time.perf_counter()
        tracker.step(frame)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def pipeline_fps(loaded, interval: int, frames_count: int) -> tuple[float, int]:
    """Frames per second of the whole pipeline (one object) at a keyframe interval."""
    frames, starts = scene(frames_count + 1, 1)
    # Untrained masks are meaningless, so drift reactions to them would be too: thresholds at 0
    # measure exactly the cost of the keyframe schedule.
    config = PipelineConfig(
        keyframes=KeyframeConfig(interval=interval, min_flow_confidence=0.0),
        drift=DriftConfig(min_iou=0.0, min_score=0.0, min_visibility=0.0),
    )
    pipeline = TrackingPipeline(StreamingTracker(loaded), None, config)
    pipeline.process(frames[0])
    x, y = starts[0]
    pipeline.add_object(box=[x, y, x + OBJECT_SIZE, y + OBJECT_SIZE])
    keyframes = 0
    start = time.perf_counter()
    for frame in frames[1:]:
        keyframes += pipeline.process(frame).is_keyframe
    return frames_count / (time.perf_counter() - start), keyframes


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--image-size', type=int, default=1024, help='SAM 2 input (1024)')
    parser.add_argument('--frames', type=int, default=20, help='frames per FPS run (20)')
    parser.add_argument('--device', default='auto')
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format='%(levelname)s %(message)s')
    loaded = load_sam2('tiny', untrained=True, device=args.device, image_size=args.image_size)
    print(f'model: {loaded.describe()}; frames {WIDTH}x{HEIGHT}\n')

    sam2_ms = sam2_step_cost(loaded)
    print('propagation cost per frame (prepare + flow), against one SAM 2 keyframe step')
    print(f'{"objects":>8} {"flow ms":>9} {"SAM 2 ms":>10} {"SAM 2 / flow":>13}')
    for objects in (1, 3, 5):
        ms = flow_cost(objects)
        print(f'{objects:>8} {ms:>9.2f} {sam2_ms:>10.1f} {sam2_ms / ms:>13.0f}')

    print(f'\neffective pipeline FPS, one object, {args.frames} frames per interval')
    print(f'{"interval":>8} {"keyframes":>10} {"FPS":>8} {"vs interval 1":>14}')
    base = None
    for interval in (1, 2, 5, 10):
        fps, keyframes = pipeline_fps(loaded, interval, args.frames)
        base = base or fps
        print(f'{interval:>8} {keyframes:>10} {fps:>8.2f} {fps / base:>13.1f}x')
    print('\n(untrained weights: timings are honest, masks are meaningless)')


if __name__ == '__main__':
    main()
