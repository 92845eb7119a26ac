"""Peak memory of SAM 2 streaming tracking per model size, input size and object count.

Each configuration runs in a fresh subprocess, so its peak RSS is its own: load the model
(untrained random weights: the figures are about memory, which weights do not change), take a
640x480 frame, prompt N objects (boxes on a grid), then run `--steps` tracking steps. On CUDA
the allocator's peak is printed too. Runs are short (a few steps each); the machine is shared.
No timings: this is about memory (bench/realtime.py measures speed).

    python bench/memory_figures.py                      # the README table, on this machine
    python bench/memory_figures.py --sizes tiny --inputs 512 --objects 1 5
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

FRAME_W, FRAME_H = 640, 480


def measure(size: str, image_size: int, objects: int, steps: int, device: str) -> dict:
    """Run one configuration in this process; return its figures."""
    import numpy as np
    import torch

    from sam2_ros.core.memory import peak_rss_mb
    from sam2_ros.models.memory_use import model_bytes, read_memory
    from sam2_ros.models.sam2_model import load_sam2
    from sam2_ros.models.streaming_tracker import StreamingTracker

    torch.set_num_threads(int(os.environ.get('BENCH_THREADS', '2')))
    loaded = load_sam2(size, untrained=True, device=device, image_size=image_size)
    after_load = peak_rss_mb()
    tracker = StreamingTracker(loaded)
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (FRAME_H, FRAME_W, 3), dtype=np.uint8) for _ in range(2)]
    tracker.step(frames[0])
    columns = 5
    for k in range(objects):
        x, y = 20 + 120 * (k % columns), 40 + 200 * (k // columns)
        tracker.add_object(box=[x, y, x + 100, y + 150])
    for i in range(steps):
        tracker.step(frames[(i + 1) % 2])
    reading = read_memory(loaded.device)
    return {
        'model': size,
        'input': image_size,
        'objects': objects,
        'model_mb': model_bytes(loaded.model) / 2**20,
        'rss_after_load_mb': after_load,
        'peak_rss_mb': reading.peak_rss_mb,
        'gpu_peak_mb': reading.gpu_peak_allocated_mb,
        'retained_mb': tracker.retained_state().bytes / 2**20,
    }


def main() -> int:
    """Run every configuration in its own subprocess and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sizes', nargs='+', default=['tiny', 'small'])
    parser.add_argument('--inputs', nargs='+', type=int, default=[1024, 512])
    parser.add_argument('--objects', nargs='+', type=int, default=[1, 5, 10])
    parser.add_argument('--steps', type=int, default=3)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--one', action='store_true', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        figures = measure(args.sizes[0], args.inputs[0], args.objects[0], args.steps, args.device)
        print(json.dumps(figures))
        return 0
    print(
        f'SAM 2.1 memory, UNTRAINED weights, {FRAME_W}x{FRAME_H} frames, device {args.device}, '
        f'{args.steps} steps after the prompts; each row a fresh process'
    )
    gpu = args.device != 'cpu'
    header = '| model | input | objects | weights MiB | peak RSS MiB | RSS after load MiB |'
    header += ' peak GPU MiB |' if gpu else ''
    header += ' retained MiB |'
    print(header)
    print('|' + '---|' * (header.count('|') - 1))
    for size in args.sizes:
        for image_size in args.inputs:
            for objects in args.objects:
                command = [sys.executable, __file__, '--one', '--sizes', size]
                command += ['--inputs', str(image_size), '--objects', str(objects)]
                command += ['--steps', str(args.steps), '--device', args.device]
                done = subprocess.run(command, capture_output=True, text=True, check=False)
                if done.returncode != 0:
                    print(f'| {size} | {image_size} | {objects} | failed: {done.stderr[-300:]} |')
                    continue
                f = json.loads(done.stdout.strip().splitlines()[-1])
                row = (
                    f'| {size} | {image_size} | {objects} | {f["model_mb"]:.0f} | '
                    f'{f["peak_rss_mb"]:.0f} | {f["rss_after_load_mb"]:.0f} |'
                )
                row += f' {f["gpu_peak_mb"]:.0f} |' if gpu else ''
                print(row + f' {f["retained_mb"]:.1f} |', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
