"""What 3D from depth costs per frame, next to optical-flow propagation, measured side by side.

Five objects of a semi-synthetic 640x480 scene (real masks from the generator, `16UC1`
depth with 30 % holes, flying pixels and noise) get their 3D centre and extent from the
aligned depth image (`frame_objects_3d`, fit check and all), and their masks carried to the
next frame by `FlowPropagator`; the two are timed interleaved, one of each in turn, so load on
the machine changes both alike. The issue's target: 3D for 5 objects <= 2 ms per frame.

    python bench/depth_costs.py [--repeats 300] [--scale 1.0]

`--scale` multiplies the objects' size (2.0: objects four times the area).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from sam2_ros.core.depth import DepthImage, MaskedObject, frame_objects_3d, metres_to_millimetres
from sam2_ros.core.flow import FlowPropagator
from sam2_ros.evaluation.synthetic import ObjectSpec, SequenceSpec, Waypoint, generate
from sam2_ros.evaluation.synthetic_depth import DepthNoise, DepthScene, render_depth

WIDTH, HEIGHT = 640, 480
TARGET_MS = 2.0
SHAPES = ('ellipse', 'rounded_rect', 'hexagon', 'star', 'ellipse')


def scene(scale: float):
    """Five objects at 0.5 to 3 m, two frames, with noisy depth for the first."""
    objects = tuple(
        ObjectSpec(
            k,
            shape,
            (90 * scale, 80 * scale),
            (Waypoint(0, 80 + 120 * k, 150 + 60 * (k % 3)), Waypoint(1, 84 + 120 * k, 152)),
        )
        for k, shape in enumerate(SHAPES)
    )
    sequence = generate(SequenceSpec(objects, num_frames=2, width=WIDTH, height=HEIGHT))
    noise = DepthNoise(sigma_at_1m=0.002, flying=0.6, edge_px=4, quantisation_m=0.001, holes=0.3)
    depth = render_depth(sequence, DepthScene(object_distances_m=(0.5, 1.0, 1.8, 2.4, 3.0)), noise)
    return sequence, depth


def percentile(values: list[float], q: float) -> float:
    """Return the q-th percentile of `values`, in ms."""
    return 1000 * float(np.percentile(values, q))


def main() -> None:
    """Time both, interleaved, and print them with their ratio and the target."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--repeats', type=int, default=300)
    parser.add_argument('--scale', type=float, default=1.0, help='object size factor')
    args = parser.parse_args()

    sequence, depth = scene(args.scale)
    truth = sequence.truth[0]
    objects = [MaskedObject(i, t.mask, t.box) for i, t in truth.items() if t.visible]
    image = DepthImage(metres_to_millimetres(depth.depth[0]), 0.001, 0, 'camera', depth.intrinsics)
    masks = {i: t.mask for i, t in truth.items()}
    flow = FlowPropagator()
    previous = flow.prepare(sequence.frames[0])
    pixels = sum(int(o.mask.sum()) for o in objects)

    depth_times, flow_times = [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        frame_objects_3d(objects, image, depth.intrinsics, (WIDTH, HEIGHT), 'camera')
        depth_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        flow.propagate(previous, flow.prepare(sequence.frames[1]), masks)
        flow_times.append(time.perf_counter() - start)

    depth_ms = 1000 * statistics.median(depth_times)
    flow_ms = 1000 * statistics.median(flow_times)
    print(
        f'{len(objects)} objects at {WIDTH}x{HEIGHT}, {pixels} mask pixels in all, '
        f'{args.repeats} interleaved repeats'
    )
    print(
        f'3D from 16UC1 depth:  median {depth_ms:6.3f} ms, p90 {percentile(depth_times, 90):6.3f}'
        ' ms per frame'
    )
    print(
        f'optical-flow propagation: median {flow_ms:6.3f} ms, p90 '
        f'{percentile(flow_times, 90):6.3f} ms per frame'
    )
    print(f'3D / flow: {depth_ms / flow_ms:.2f}')
    verdict = 'met' if depth_ms <= TARGET_MS else 'NOT met'
    print(f'target: 3D <= {TARGET_MS:g} ms per frame for 5 objects: {verdict}')


if __name__ == '__main__':
    main()
