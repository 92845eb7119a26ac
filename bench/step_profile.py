"""Time of each SAM 2 component per tracker step, per precision, size and object count.

Runs the package's own path (load_sam2 + StreamingTracker.step) and times its components
with forward hooks on the SAM 2 submodules and wrappers on the tracker's pre/post-processing
methods (a profiling hook; nothing of the step is re-implemented here):

    encoder    image_encoder (Hiera + FPN)
    mem_attn   memory_attention (current features x memory of earlier steps)
    decoder    sam_prompt_encoder + sam_mask_decoder
    mem_enc    memory_encoder (mask -> memory of this step)
    pre        frame -> normalised model input (resize, normalise)
    post       hole filling, upscaling to the frame, masks to numpy
    other      the rest of the step (glue in sam2_base, batching, bookkeeping)

Every variant (precision x size x objects) is built first and warmed to a full memory window;
then rounds go round-robin over the variants, one step each, so a loaded machine slows every
variant alike; medians over rounds are printed, with the step ratio to fp32 at the same size
and object count. Weights are untrained (no checkpoint is reachable here); compute cost does
not depend on weight values.

    python bench/step_profile.py [--sizes 256,512,1024] [--objects 1,5] [--rounds 5]
        [--precisions fp32,bf16,auto] [--warm-steps 7] [--threads N]

fp16 on a CPU needs AVX512-FP16 / AMX-FP16 to be native; it is measured where asked
(--precisions fp32,fp16) and otherwise left out by default.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
import logging
import statistics
import time
import warnings

import numpy as np
import torch

from sam2_ros.models.precision import cpu_flags
from sam2_ros.models.sam2_model import load_sam2
from sam2_ros.models.streaming_tracker import StreamingTracker

COLUMNS = ('encoder', 'mem_attn', 'decoder', 'mem_enc', 'pre', 'post', 'other')
MODULES = {
    'encoder': ('image_encoder',),
    'mem_attn': ('memory_attention',),
    'decoder': ('sam_prompt_encoder', 'sam_mask_decoder'),
    'mem_enc': ('memory_encoder',),
}
TRACKER_METHODS = {'pre': ('_preprocess',), 'post': ('_fill_holes', '_result')}


class StepTimer:
    """Accumulates seconds per component during one step (hooks add, `take` empties)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.seconds: dict[str, float] = defaultdict(float)
        self._started: dict[int, float] = {}

    def _now(self) -> float:
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def attach(self, loaded, tracker: StreamingTracker) -> None:
        """Time the model's submodules (forward hooks) and the tracker's pre/post methods."""
        """ and wrap the tracker's pre/post methods."""
        for column, names in MODULES.items():
            for name in names:
                module = getattr(loaded.model, name)
                module.register_forward_pre_hook(self._pre_hook(module))
                module.register_forward_hook(self._post_hook(module, column))
        for column, names in TRACKER_METHODS.items():
            for name in names:
                setattr(tracker, name, self._timed(getattr(tracker, name), column))

    def _pre_hook(self, module):
        def hook(_module, _args):
            self._started[id(module)] = self._now()

        return hook

    def _post_hook(self, module, column):
        def hook(_module, _args, _output):
            self.seconds[column] += self._now() - self._started.pop(id(module))

        return hook

    def _timed(self, method, column):
        def run(*args, **kwargs):
            start = self._now()
            try:
                return method(*args, **kwargs)
            finally:
                self.seconds[column] += self._now() - start

        return run

    def take(self, total: float) -> dict[str, float]:
        """Return the step's seconds per column, 'other' and 'step' included; reset the timer."""
        seconds = dict(self.seconds)
        self.seconds.clear()
        seconds['other'] = total - sum(seconds.values())
        seconds['step'] = total
        return seconds


def moving_frames(count: int, width: int = 640, height: int = 480, seed: int = 0):
    """Deterministic frames: textured squares moving over a textured background."""
    rng = np.random.default_rng(seed)
    background = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    patches = [rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8) for _ in range(5)]
    frames = []
    for i in range(count):
        frame = background.copy()
        for k, patch in enumerate(patches):
            x = (40 + 110 * k + 3 * i) % (width - 64)
            y = (40 + 70 * k + 2 * i) % (height - 64)
            frame[y : y + 64, x : x + 64] = patch
        frames.append(frame)
    return frames


def object_boxes(objects: int, width: int = 640, height: int = 480) -> list[list[float]]:
    """Boxes of the first frame's squares (see moving_frames)."""
    boxes = []
    for k in range(objects):
        x = (40 + 110 * k) % (width - 64)
        y = (40 + 70 * k) % (height - 64)
        boxes.append([x, y, x + 64, y + 64])
    return boxes


def start_tracker(loaded, frames, objects: int) -> StreamingTracker:
    """Return a tracker on frames[0] with `objects` box-prompted objects."""
    tracker = StreamingTracker(loaded)
    tracker.step(frames[0])
    for box in object_boxes(objects):
        tracker.add_object(box=box)
    return tracker


class Variant:
    """One precision x size x objects setting, with its model, tracker and frame cursor."""

    def __init__(self, precision, image_size, objects, frames, warm_steps, device, size, compile):
        self.key = (image_size, objects, precision + (' +compile' if compile else ''))
        self.loaded = load_sam2(
            size,
            untrained=True,
            device=device,
            precision=precision,
            image_size=image_size,
            compile=compile,
        )
        self.frames = frames
        self.tracker = start_tracker(self.loaded, frames, objects)
        self.cursor = 1
        self.warm_times = []  # the memory window filling: new shapes every step
        for _ in range(warm_steps):  # fill the memory window: attention cost grows with it
            start = time.perf_counter()
            self.step()
            self.warm_times.append(time.perf_counter() - start)
        self.timer = StepTimer(self.loaded.device)
        self.timer.attach(self.loaded, self.tracker)
        self.samples: list[dict[str, float]] = []

    def step(self):
        """Feed the variant's next frame."""
        frame = self.frames[self.cursor % len(self.frames)]
        self.cursor += 1
        return self.tracker.step(frame)

    def measure(self) -> None:
        """Time one step, per component."""
        start = self.timer._now()
        self.step()
        self.samples.append(self.timer.take(self.timer._now() - start))

    def medians(self) -> dict[str, float]:
        """Return the median per column over the measured steps, and the fastest step."""
        keys = {k for s in self.samples for k in s}
        medians = {k: statistics.median(s.get(k, 0.0) for s in self.samples) for k in keys}
        medians['min'] = min(s['step'] for s in self.samples)
        return medians


def cpu_summary() -> str:
    """Return one line on the CPU's capability and native low-precision flags."""
    flags = cpu_flags()
    native = [f for f in ('avx512_bf16', 'amx_bf16', 'avx512_fp16', 'amx_fp16') if f in flags]
    capability = torch.backends.cpu.get_cpu_capability()
    native_text = ', '.join(native) or 'none'
    return f'CPU capability {capability}, native low-precision flags: {native_text}'


SHORT = {'image_encoder': 'enc', 'memory_attention': 'attn', 'mask_decoder': 'dec'}


def short_label(precision: str) -> str:
    """Return a precision setting with short component names (enc, attn, dec, mem_enc)."""
    for name, short in (*SHORT.items(), ('memory_encoder', 'mem_enc')):
        precision = precision.replace(name, short)
    return precision


def parse_list(text: str, cast=str) -> list:
    """Split a comma-separated option."""
    return [cast(item) for item in text.split(',') if item]


def main() -> None:
    """Build the variants, measure them round-robin, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--sizes', default='256,512,1024', help='model input sizes')
    parser.add_argument('--objects', default='1,5', help='object counts')
    parser.add_argument(
        '--precisions',
        default='fp32,bf16,auto',
        help="settings: fp32, bf16, fp16, auto, or component=dtype lists separated by ';'",
    )
    parser.add_argument('--rounds', type=int, default=5, help='interleaved rounds (median)')
    parser.add_argument('--warm-steps', type=int, default=7, help='steps before measuring')
    parser.add_argument('--threads', type=int, default=0, help='torch threads (0: default)')
    parser.add_argument('--model', default='tiny')
    parser.add_argument('--device', default='cpu')
    parser.add_argument(
        '--compile', action='store_true', help='also each setting with torch.compile'
    )
    args = parser.parse_args()
    warnings.filterwarnings('ignore')
    logging.basicConfig(level=logging.ERROR)
    if args.threads:
        torch.set_num_threads(args.threads)
    precisions = [p for p in args.precisions.replace(';', ' ').split() if p]
    if len(precisions) == 1 and ',' in precisions[0] and '=' not in precisions[0]:
        precisions = parse_list(precisions[0])
    frames = moving_frames(64)
    variants = [
        Variant(p, s, n, frames, args.warm_steps, args.device, args.model, c)
        for s in parse_list(args.sizes, int)
        for n in parse_list(args.objects, int)
        for p in precisions
        for c in ((False, True) if args.compile else (False,))
    ]
    print(f'SAM 2.1 {args.model}, UNTRAINED weights (timings honest, masks meaningless)')
    print(f'{cpu_summary()}; torch {torch.__version__}, {torch.get_num_threads()} threads')
    print(f'frames 640x480, {args.warm_steps} warm-up steps, {args.rounds} interleaved rounds')
    for r in range(args.rounds):
        order = variants if r % 2 == 0 else variants[::-1]  # alternate to cancel drift
        for variant in order:
            variant.measure()
    print('\nmedian ms per step; ratio = fp32 step / this step (same size and objects), of the')
    print('medians and of the minima (the least disturbed step); warm-up: the first steps,')
    print('while the memory window fills (new tensor shapes each step), mean ms')
    header = ('size', 'obj', 'precision', *COLUMNS, 'step', 'ratio', 'min', 'ratio', 'warm-up')
    print('| ' + ' | '.join(header) + ' |')
    print('|' + '---|' * len(header))
    table = {v.key: v.medians() for v in variants}
    for variant in variants:
        size, objects, precision = variant.key
        m = table[variant.key]
        base = table.get((size, objects, 'fp32'))
        ratio = f'{base["step"] / m["step"]:.2f}' if base else '-'
        min_ratio = f'{base["min"] / m["min"]:.2f}' if base else '-'
        cells = [f'{1000 * m.get(c, 0.0):.0f}' for c in (*COLUMNS, 'step')]
        warm = statistics.mean(variant.warm_times) if variant.warm_times else 0.0
        tail = f' | {ratio} | {1000 * m["min"]:.0f} | {min_ratio} | {1000 * warm:.0f} |'
        label = short_label(precision)
        if precision.startswith('auto'):
            label = f'{label} = {short_label(variant.loaded.precision)}'
        print(f'| {size} | {objects} | {label} | ' + ' | '.join(cells) + tail)


if __name__ == '__main__':
    main()
