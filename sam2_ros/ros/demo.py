"""The main job: start the installed sam2_tracker node, prompt it, stream images, print output.

Everything runs over real ROS 2 topics and services, confined to localhost in a private
domain: the demo starts the node as `ros2 run` would, streams a generated scene (a textured
disc circling over a gradient), prompts the disc with a box through `~/add_prompt` on the
first frame, and prints every TrackedObjectArray the node publishes.

Weights: `--weights official` loads SAM 2.1 and YOLOv10 checkpoints (Hub / Ultralytics download
or cache) and fails with the node's reason when they cannot be had; `untrained` builds random
weights (masks are meaningless); `auto` (the default) uses the official ones when the SAM 2.1
checkpoint can be had and otherwise says so and runs untrained. Every line of output that
depends on the weights is prefixed with the weights in use.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import cv2
import numpy as np

from sam2_ros.ros.ros_env import apply_loopback_environment

STATE_NAMES = {0: 'TRACKING', 1: 'PROPAGATED', 2: 'REANCHORED', 3: 'LOST'}


def generated_frame(index: int, width: int, height: int) -> np.ndarray:
    """Draw a deterministic BGR test frame: a textured disc circling over a gradient."""
    x = np.linspace(0, 255, width, dtype=np.float32)
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    frame = np.empty((height, width, 3), dtype=np.uint8)
    frame[..., 0] = (0.6 * x + 0.2 * y).astype(np.uint8)
    frame[..., 1] = (0.3 * y + 40).astype(np.uint8)
    frame[..., 2] = (255 - 0.5 * x).astype(np.uint8)
    angle = 2 * np.pi * index / 60.0
    cx = int(width / 2 + 0.3 * width * np.cos(angle))
    cy = int(height / 2 + 0.3 * height * np.sin(angle))
    radius = max(4, min(width, height) // 8)
    cv2.circle(frame, (cx, cy), radius, (30, 200, 240), thickness=-1)
    cv2.circle(frame, (cx, cy), radius // 2, (200, 40, 90), thickness=3)
    return frame


def disc_box(index: int, width: int, height: int) -> list[float]:
    """Return the box [x0, y0, x1, y1] around the disc of `generated_frame(index, ...)`."""
    angle = 2 * np.pi * index / 60.0
    cx = width / 2 + 0.3 * width * np.cos(angle)
    cy = height / 2 + 0.3 * height * np.sin(angle)
    radius = max(4, min(width, height) // 8) + 2
    return [
        max(0.0, cx - radius),
        max(0.0, cy - radius),
        min(float(width), cx + radius),
        min(float(height), cy + radius),
    ]


def choose_weights(requested: str, model: str) -> tuple[bool, str]:
    """Return (untrained, why) for --weights auto|official|untrained."""
    if requested == 'untrained':
        return True, 'requested with --weights untrained'
    if requested == 'official':
        return False, 'requested with --weights official'
    import socket

    from huggingface_hub import hf_hub_download

    from sam2_ros.core.sam2_model import SAM2_SIZES, ModelLoadError, download_checkpoint

    spec = SAM2_SIZES[model]
    try:  # the local Hub cache first, then the network (a quick DNS check avoids retries)
        hf_hub_download(spec.hf_repo, spec.filename, local_files_only=True)
        return False, f'the official SAM 2.1 {model} checkpoint is in the local Hub cache'
    except Exception:  # noqa: BLE001 - not cached
        pass
    try:
        socket.getaddrinfo('huggingface.co', 443)
    except OSError as error:
        return (
            True,
            f'the SAM 2.1 {model} checkpoint is not cached and the Hub is unreachable ({error})',
        )
    try:
        download_checkpoint(model)
    except ModelLoadError as error:
        return True, f'the official SAM 2.1 {model} checkpoint cannot be had here ({error})'
    return False, f'the official SAM 2.1 {model} checkpoint is available'


def _parse_args(argv):
    parser = argparse.ArgumentParser(
        prog='sam2_demo',
        description='Start the sam2_tracker node, stream generated images to it over ROS 2 '
        '(localhost only, private domain) and print every message it publishes.',
    )
    parser.add_argument('--frames', type=int, default=30, help='frames to stream (30)')
    parser.add_argument('--rate', type=float, default=10.0, help='frames per second (10)')
    parser.add_argument('--width', type=int, default=640, help='image width (640)')
    parser.add_argument('--height', type=int, default=480, help='image height (480)')
    parser.add_argument(
        '--timeout', type=float, default=120.0, help='seconds to wait for the node (120)'
    )
    parser.add_argument(
        '--weights',
        choices=('auto', 'official', 'untrained'),
        default='auto',
        help='official checkpoints, untrained random weights, or auto: official when they can '
        'be had, else untrained (default auto)',
    )
    parser.add_argument(
        '--model',
        default='tiny',
        choices=('tiny', 'small', 'base_plus', 'large'),
        help='SAM 2.1 size',
    )
    parser.add_argument(
        '--image-size',
        type=int,
        default=0,
        help='SAM 2 input size; 0 = 1024 with official weights, 256 with untrained ones',
    )
    args = parser.parse_args(argv)
    if args.frames < 2 or args.rate <= 0 or args.width < 64 or args.height < 64:
        parser.error('--frames >= 2, --rate > 0, --width and --height >= 64 are required')
    return args


def main(argv=None) -> int:
    """Run the demo; return 0 when every frame was answered and the node exited cleanly."""
    args = _parse_args(argv)
    domain_id = apply_loopback_environment()

    import rclpy
    import rclpy.context
    import rclpy.executors
    from rclpy.node import Node
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    from sam2_ros.msg import TrackedObjectArray
    from sam2_ros.ros.image_conversion import array_to_image_msg
    from sam2_ros.ros.node_process import NodeProcess, installed_executable
    from sam2_ros.ros.tracker_node import READY_MESSAGE
    from sam2_ros.srv import AddPrompt

    print(f'[demo] ROS_DOMAIN_ID={domain_id}, discovery limited to localhost')
    untrained, why = choose_weights(args.weights, args.model)
    weights = 'UNTRAINED random weights' if untrained else f'SAM 2.1 {args.model} official weights'
    print(f'[demo] weights: {weights}: {why}')
    tag = '[demo][UNTRAINED] ' if untrained else '[demo] '
    image_size = args.image_size or (256 if untrained else 1024)
    parameters = {
        'image_qos_reliability': 'reliable',
        'image_qos_depth': 10,
        'untrained_models': untrained,
        'sam2_model': args.model,
        'sam2_image_size': image_size,
    }
    command = [installed_executable('sam2_tracker_node'), '--ros-args']
    for name, value in parameters.items():
        command += ['-p', f'{name}:={str(value).lower() if isinstance(value, bool) else value}']
    node_process = NodeProcess(command, echo=lambda line: print(f'[node] {line}'))
    context = rclpy.context.Context()
    rclpy.init(context=context)
    received: dict[int, tuple[TrackedObjectArray, float]] = {}
    sent_at: dict[int, float] = {}
    exit_code, node_exit, prompted_id = 1, None, 0
    try:
        node_process.wait_for(READY_MESSAGE, timeout=args.timeout)
        node = Node('sam2_demo', context=context)
        executor = rclpy.executors.SingleThreadedExecutor(context=context)
        executor.add_node(node)
        # Reliable on both ends: a 640x480 image is larger than a Fast DDS shared-memory
        # segment, and best-effort UDP fragments get dropped.
        publisher = node.create_publisher(
            Image, 'image', QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        )

        def on_objects(msg: TrackedObjectArray) -> None:
            index = (
                int(msg.header.frame_id.rsplit('#', 1)[-1]) if '#' in msg.header.frame_id else -1
            )
            received[index] = (msg, time.monotonic())
            objects = ' '.join(
                f'[id={o.id} {o.label or "-"} {STATE_NAMES.get(o.state, o.state)} '
                f'area={o.area} box=({o.bbox.x_offset},{o.bbox.y_offset},'
                f'{o.bbox.width}x{o.bbox.height}) score={o.score:.2f}]'
                for o in msg.objects
            )
            print(
                f'{tag}tracked_objects: stamp={msg.header.stamp.sec}.'
                f'{msg.header.stamp.nanosec:09d} frame_id={msg.header.frame_id} '
                f'{msg.image_width}x{msg.image_height} keyframe={msg.is_keyframe} '
                f'objects={len(msg.objects)} {objects}'.rstrip()
            )

        subscription = node.create_subscription(
            TrackedObjectArray, 'tracked_objects', on_objects, 10
        )
        deadline = time.monotonic() + args.timeout

        def connected() -> bool:
            return (
                publisher.get_subscription_count() > 0
                and node.count_publishers(subscription.topic_name) > 0
            )

        while not connected() and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
        if not connected():
            raise TimeoutError('the node and the demo did not discover each other')

        def publish(index: int) -> None:
            frame = generated_frame(index, args.width, args.height)
            msg = array_to_image_msg(frame, 'bgr8')
            msg.header.stamp = node.get_clock().now().to_msg()
            # The frame index travels in frame_id so answers can be matched to frames.
            msg.header.frame_id = f'demo_camera#{index}'
            sent_at[index] = time.monotonic()
            publisher.publish(msg)

        # Frame 0, then a box prompt on it, as a user clicking on the first image would.
        publish(0)
        while 0 not in received and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
        client = node.create_client(AddPrompt, '/sam2_tracker/add_prompt')
        request = AddPrompt.Request(label='disc', box=disc_box(0, args.width, args.height))
        future = client.call_async(request)
        while not future.done() and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
        if not future.done():
            raise TimeoutError('add_prompt did not answer')
        response = future.result()
        print(
            f'{tag}add_prompt box={[round(v) for v in request.box]}: success={response.success} '
            f'object_id={response.object_id} score={response.score:.2f} "{response.message}"'
        )
        if response.success:
            prompted_id = response.object_id

        period = 1.0 / args.rate
        for index in range(1, args.frames):
            publish(index)
            next_frame = sent_at[index] + period
            while time.monotonic() < next_frame:
                executor.spin_once(timeout_sec=max(0.0, next_frame - time.monotonic()))
        # The node drops frames it cannot keep up with (counted on /diagnostics): wait for the
        # answer to the last frame, which it never drops.
        drain_until = time.monotonic() + args.timeout
        while args.frames - 1 not in received and time.monotonic() < drain_until:
            executor.spin_once(timeout_sec=0.05)
        executor.shutdown()
        node.destroy_node()
    except (TimeoutError, RuntimeError, FileNotFoundError) as error:
        print(f'[demo] error: {error}', file=sys.stderr)
    finally:
        rclpy.try_shutdown(context=context)
        node_exit = node_process.interrupt()
        print(f'[demo] node exited with code {node_exit}')

    latencies = [1000.0 * (received[i][1] - sent_at[i]) for i in received if i in sent_at]
    print(
        f'[demo] published {len(sent_at)} frames, received {len(received)} tracked_objects '
        f'({len(sent_at) - len(received)} frames dropped by the node while SAM 2 ran)'
    )
    if latencies:
        print(
            f'[demo] image-to-output latency: median {statistics.median(latencies):.1f} ms, '
            f'max {max(latencies):.1f} ms'
        )
    tracked = [
        i for i, (m, _) in received.items() if i > 0 and prompted_id in [o.id for o in m.objects]
    ]
    print(f'{tag}object {prompted_id} present in {len(tracked)} answers after the prompt')
    if prompted_id and tracked and args.frames - 1 in received and node_exit == 0:
        exit_code = 0
    print('[demo] ' + ('OK' if exit_code == 0 else 'FAILED'))
    return exit_code


if __name__ == '__main__':
    sys.exit(main())
