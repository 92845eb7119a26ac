"""The main job: start the installed sam2_tracker node, stream images to it, print its output.

Everything runs over real ROS 2 topics, confined to localhost in a private domain. The image
stream is a generated scene (a textured disc moving over a gradient) until the rosbag tools
bring recorded footage.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import cv2
import numpy as np

from sam2_ros.ros.ros_env import apply_loopback_environment


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
        '--timeout', type=float, default=60.0, help='seconds to wait for the node (60)'
    )
    args = parser.parse_args(argv)
    if args.frames < 1 or args.rate <= 0 or args.width < 8 or args.height < 8:
        parser.error('--frames >= 1, --rate > 0, --width and --height >= 8 are required')
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

    print(f'[demo] ROS_DOMAIN_ID={domain_id}, discovery limited to localhost')
    node_process = NodeProcess(
        [
            installed_executable('sam2_tracker_node'),
            '--ros-args',
            '-p',
            'image_qos_reliability:=reliable',
            '-p',
            'image_qos_depth:=10',
        ],
        echo=lambda line: print(f'[node] {line}'),
    )
    context = rclpy.context.Context()
    rclpy.init(context=context)
    received: dict[int, tuple[TrackedObjectArray, float]] = {}
    sent_at: dict[int, float] = {}
    exit_code = 1
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
            print(
                f'[demo] tracked_objects: stamp={msg.header.stamp.sec}.'
                f'{msg.header.stamp.nanosec:09d} frame_id={msg.header.frame_id} '
                f'{msg.image_width}x{msg.image_height} keyframe={msg.is_keyframe} '
                f'objects={len(msg.objects)}'
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

        period = 1.0 / args.rate
        for index in range(args.frames):
            frame = generated_frame(index, args.width, args.height)
            msg = array_to_image_msg(frame, 'bgr8')
            msg.header.stamp = node.get_clock().now().to_msg()
            # The frame index travels in frame_id so answers can be matched to frames.
            msg.header.frame_id = f'demo_camera#{index}'
            sent_at[index] = time.monotonic()
            publisher.publish(msg)
            next_frame = sent_at[index] + period
            while time.monotonic() < next_frame:
                executor.spin_once(timeout_sec=max(0.0, next_frame - time.monotonic()))
        drain_until = time.monotonic() + min(5.0, args.timeout)
        while len(received) < args.frames and time.monotonic() < drain_until:
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
    print(f'[demo] published {len(sent_at)} frames, received {len(received)} tracked_objects')
    if latencies:
        print(
            f'[demo] round-trip latency: median {statistics.median(latencies):.1f} ms, '
            f'max {max(latencies):.1f} ms'
        )
    if sent_at and len(received) == len(sent_at) and node_exit == 0:
        exit_code = 0
    print('[demo] ' + ('OK' if exit_code == 0 else 'FAILED'))
    return exit_code


if __name__ == '__main__':
    sys.exit(main())
