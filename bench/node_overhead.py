"""Measure what the ROS node adds on top of the pipeline, at 640x480 with three objects.

Latency from publishing an image to receiving its TrackedObjectArray, minus the pipeline's
own compute on that frame, plus the node's per-frame costs measured one by one in the same run.

The tracker node runs in this process on a MultiThreadedExecutor, as `main` runs it, with the
real (untrained) SAM 2.1 tiny at 256 px and YOLOv10-N; a client node publishes frames in
lockstep (the next frame after the previous answer), so no frame waits for the worker and the
difference is the node's overhead: callback, decoding, queueing, message building,
publishing and DDS delivery. The client shares the process (and the GIL) with the node, which
makes the numbers pessimistic. Untrained weights: masks are meaningless, costs are real.

    source scripts/env.sh && python bench/node_overhead.py [--frames 60]
"""

from __future__ import annotations

import argparse
import os
import threading
import time

import numpy as np

from sam2_ros.ros.ros_env import apply_loopback_environment

FRAME_BUDGET_MS = 1000.0 / 30.0  # a 30 fps camera


def scene(index: int) -> np.ndarray:
    """Return a 640x480 RGB frame: three textured squares moving over a textured background."""
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, size=(480, 640, 3), dtype=np.uint8)
    patches = [rng.integers(0, 256, size=(80, 80, 3), dtype=np.uint8) for _ in range(3)]
    for k, patch in enumerate(patches):
        x, y = 60 + 180 * k + 2 * index, 120 + 60 * k + index
        frame[y : y + 80, x : x + 80] = patch
    return frame


def ms(samples) -> str:
    """Format p50 and p95 of millisecond samples."""
    return f'p50 {np.percentile(samples, 50):7.2f} ms   p95 {np.percentile(samples, 95):7.2f} ms'


def timed(function, repeat: int = 50) -> list[float]:
    """Time `repeat` calls of `function`, in ms."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        samples.append(1000.0 * (time.perf_counter() - start))
    return samples


def main() -> None:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--frames', type=int, default=60)
    args = parser.parse_args()
    apply_loopback_environment()
    os.environ.setdefault('YOLO_OFFLINE', '1')

    import rclpy
    import rclpy.context
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.parameter import Parameter
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    from sam2_ros.core.overlay import render_overlay
    from sam2_ros.msg import TrackedObjectArray
    from sam2_ros.ros.conversions import frame_result_to_msg, label_image_msg
    from sam2_ros.ros.image_conversion import array_to_image_msg, image_msg_to_rgb
    from sam2_ros.tracker.node import TrackerNode

    context = rclpy.context.Context()
    rclpy.init(context=context)
    parameters = {
        'untrained_models': True,
        'sam2_image_size': 256,
        'device': 'cpu',
        'image_qos_reliability': 'reliable',
        'image_qos_depth': 10,
    }
    node = TrackerNode(
        context=context, parameter_overrides=[Parameter(k, value=v) for k, v in parameters.items()]
    )
    client = rclpy.create_node('overhead_bench', context=context)
    executor = MultiThreadedExecutor(num_threads=4, context=context)
    executor.add_node(node)
    executor.add_node(client)
    threading.Thread(target=executor.spin, daemon=True).start()

    pipeline = node._pipeline
    compute: dict[int, float] = {}  # stamp sec -> pipeline ms
    keyframe: dict[int, bool] = {}  # stamp sec -> SAM 2 ran
    last_result = {}
    real_process = pipeline.process

    def measured_process(frame, stamp):
        result = real_process(frame, stamp)
        compute[stamp.sec] = result.timings_ms['total']
        keyframe[stamp.sec] = result.is_keyframe
        last_result['result'] = result
        return result

    pipeline.process = measured_process
    publisher = client.create_publisher(
        Image, 'image', QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    )
    arrived: dict[int, float] = {}
    client.create_subscription(
        TrackedObjectArray,
        'tracked_objects',
        lambda m: arrived.setdefault(m.header.stamp.sec, time.perf_counter()),
        10,
    )
    while (
        publisher.get_subscription_count() == 0 or client.count_publishers('/tracked_objects') == 0
    ):
        time.sleep(0.01)

    def send(sec: int) -> float:
        msg = array_to_image_msg(scene(sec), 'rgb8')
        msg.header.stamp.sec = sec
        start = time.perf_counter()
        publisher.publish(msg)
        while sec not in arrived:
            time.sleep(0.0002)
        return 1000.0 * (arrived[sec] - start)

    send(0)
    worker = node._worker
    for x, y in ((100, 160), (280, 220), (460, 280)):  # one click per square
        future = worker.submit(lambda x=x, y=y: pipeline.add_object(points=[[x, y]], labels=[1]))
        future.result(timeout=60)
    latency = [send(sec) for sec in range(1, args.frames + 1)]
    frames = range(1, args.frames + 1)
    pipeline_ms = [compute[s] for s in frames]
    overhead = [lat - comp for lat, comp in zip(latency, pipeline_ms, strict=True)]
    keyframes = sum(keyframe[s] for s in frames)

    # The node's per-frame costs, one by one, on the same 640x480 frame and 3-object result.
    frame = scene(1)
    image_msg = array_to_image_msg(frame, 'rgb8')
    result = last_result['result']
    header = image_msg.header
    objects_msg = frame_result_to_msg(result, header, (640, 480))
    probe = client.create_publisher(TrackedObjectArray, 'overhead_probe', 10)
    label_probe = client.create_publisher(Image, 'overhead_label_probe', 10)
    client.create_subscription(TrackedObjectArray, 'overhead_probe', lambda m: None, 10)
    client.create_subscription(Image, 'overhead_label_probe', lambda m: None, 10)
    image_probe = client.create_publisher(
        Image, 'overhead_image_probe', QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    )
    delivered = []
    client.create_subscription(
        Image,
        'overhead_image_probe',
        lambda m: delivered.append(time.perf_counter()),
        QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE),
    )
    time.sleep(0.5)

    def transport() -> None:
        count = len(delivered)
        image_probe.publish(image_msg)
        while len(delivered) == count:
            time.sleep(0.0002)

    label_msg = label_image_msg(result.objects, (480, 640), header)
    parts = {
        'DDS: publish -> callback, 640x480 rgb8': timed(transport),
        'decode Image -> RGB (copy, validation)': timed(lambda: image_msg_to_rgb(image_msg)),
        'TrackedObjectArray build (3 RLE masks)': timed(
            lambda: frame_result_to_msg(result, header, (640, 480))
        ),
        'label image build': timed(lambda: label_image_msg(result.objects, (480, 640), header)),
        'publish TrackedObjectArray': timed(lambda: probe.publish(objects_msg)),
        'publish label image (300 KB)': timed(lambda: label_probe.publish(label_msg)),
        'overlay render + message (if subscribed)': timed(
            lambda: array_to_image_msg(render_overlay(frame, result), 'bgr8', header)
        ),
    }

    print(
        f'node overhead at 640x480, {len(pipeline.object_ids)} objects, {args.frames} frames '
        f'in lockstep ({keyframes} SAM 2 keyframes), untrained SAM 2.1 tiny @256 + YOLOv10-N'
    )
    print(f'  end-to-end (publish -> receive)   {ms(latency)}')
    print(f'  pipeline compute                  {ms(pipeline_ms)}')
    print(f'  node overhead (difference)        {ms(overhead)}')
    print(
        f'  overhead p50 = {np.percentile(overhead, 50) / FRAME_BUDGET_MS:.1%} of a 30 fps frame '
        f'budget ({FRAME_BUDGET_MS:.1f} ms); target < 3 ms: '
        + ('met' if np.percentile(overhead, 50) < 3.0 else 'NOT met')
    )
    print('  per-frame costs inside the overhead:')
    for name, samples in parts.items():
        print(f'    {name:40s} {ms(samples)}')

    node.stop_tracking()
    executor.shutdown(timeout_sec=2.0)
    node.destroy_node()
    client.destroy_node()
    rclpy.try_shutdown(context=context)


if __name__ == '__main__':
    main()
