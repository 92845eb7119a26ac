"""Latency of one raw image over Fast DDS on one host: default (UDP loopback) vs shared memory.

A publisher and a subscriber process (rclpy, rmw_fastrtps_cpp, discovery on localhost) send
the same sensor_msgs/Image (rgb8) --count times at --rate Hz; the subscriber records the time
from the stamp set just before publish() to its callback (one host, one clock). Variants, each
its own pair of processes, go round-robin over --rounds rounds, so load on the machine hits
them alike:

    default   no Fast DDS profile: what the node gets today with a LOCALHOST discovery range
    shm       config/fastdds_shm.xml (FASTDDS_DEFAULT_PROFILES_FILE): shared memory with
              segments large enough for a 720p frame, UDP on 127.0.0.1 for discovery only

Printed: p50 and p95 latency (ms) per image size and variant, received/sent, and the ratio
default/shm of the p50s. Fast DDS data sharing (zero copy) needs bounded types; Image has an
unbounded data field, so it cannot apply to this topic through rclpy.

    source scripts/env.sh && python bench/image_transport.py [--rounds 3] [--count 100]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import subprocess
import sys
import time

import numpy as np

SIZES = {'640x480': (640, 480), '1280x720': (1280, 720)}
PROFILE = Path(__file__).resolve().parents[1] / 'config' / 'fastdds_shm.xml'
TOPIC = 'transport_bench/image'


def qos(reliability: str):
    """Return the image QoS: depth 5, reliable or best effort."""
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    reliable = reliability == 'reliable'
    policy = ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT
    return QoSProfile(depth=5, reliability=policy)


def publisher(width: int, height: int, count: int, rate: float, reliability: str) -> None:
    """Publish `count` stamped images once a subscriber is matched."""
    import rclpy
    from sensor_msgs.msg import Image

    rclpy.init()
    node = rclpy.create_node('transport_bench_pub')
    pub = node.create_publisher(Image, TOPIC, qos(reliability))
    frame = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    msg = Image(height=height, width=width, encoding='rgb8', step=width * 3)
    msg.data = frame.tobytes()
    deadline = time.monotonic() + 20.0
    while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
    time.sleep(0.5)  # let the reader's side of discovery settle
    for _ in range(count):
        now = time.time_ns()
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(now, 1_000_000_000)
        pub.publish(msg)
        time.sleep(1.0 / rate)
    time.sleep(1.0)
    node.destroy_node()
    rclpy.shutdown()


def subscriber(count: int, timeout_s: float, reliability: str) -> None:
    """Receive images; print their latencies (ms) as JSON on stdout."""
    import rclpy
    from sensor_msgs.msg import Image

    rclpy.init()
    node = rclpy.create_node('transport_bench_sub')
    latencies = []

    def on_image(msg):
        sent = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        latencies.append((time.time_ns() - sent) / 1e6)

    node.create_subscription(Image, TOPIC, on_image, qos(reliability))
    deadline = time.monotonic() + timeout_s
    while len(latencies) < count and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
    print(json.dumps(latencies))
    node.destroy_node()
    rclpy.shutdown()


def run_pair(variant: str, size: str, args) -> list[float]:
    """Run one publisher/subscriber pair with `variant`'s environment; return latencies."""
    env = dict(os.environ)
    env.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    env['RMW_IMPLEMENTATION'] = 'rmw_fastrtps_cpp'
    for name in ('FASTDDS_DEFAULT_PROFILES_FILE', 'FASTRTPS_DEFAULT_PROFILES_FILE'):
        env.pop(name, None)
    if variant == 'shm':
        env['FASTDDS_DEFAULT_PROFILES_FILE'] = str(PROFILE)
    width, height = SIZES[size]
    me = [sys.executable, __file__]
    timeout = 25.0 + args.count / args.rate
    sub = subprocess.Popen(
        [
            *me,
            '--role',
            'sub',
            '--count',
            str(args.count),
            '--timeout',
            str(timeout),
            '--qos',
            args.qos,
        ],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    pub = subprocess.Popen(
        [
            *me,
            '--role',
            'pub',
            '--width',
            str(width),
            '--height',
            str(height),
            '--count',
            str(args.count),
            '--rate',
            str(args.rate),
            '--qos',
            args.qos,
        ],
        env=env,
    )
    out, _ = sub.communicate(timeout=timeout + 10)
    pub.wait(timeout=30)
    return json.loads(out.strip().splitlines()[-1]) if out.strip() else []


def main() -> None:
    """Run a role, or the whole interleaved comparison."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--role', choices=('bench', 'pub', 'sub'), default='bench')
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--count', type=int, default=100, help='images per pair and round')
    parser.add_argument('--rate', type=float, default=30.0)
    parser.add_argument('--qos', choices=('reliable', 'best_effort'), default='reliable')
    parser.add_argument('--variants', default='default,shm')
    parser.add_argument('--width', type=int, default=640)
    parser.add_argument('--height', type=int, default=480)
    parser.add_argument('--timeout', type=float, default=30.0)
    args = parser.parse_args()
    if args.role == 'pub':
        return publisher(args.width, args.height, args.count, args.rate, args.qos)
    if args.role == 'sub':
        return subscriber(args.count, args.timeout, args.qos)
    if not os.environ.get('ROS_DOMAIN_ID'):
        sys.exit('set ROS_DOMAIN_ID (and ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST) first')
    variants = args.variants.split(',')
    cells = [(s, v) for s in SIZES for v in variants]
    samples = {cell: [] for cell in cells}
    for r in range(args.rounds):
        for cell in cells if r % 2 == 0 else cells[::-1]:
            samples[cell].extend(run_pair(cell[1], cell[0], args))
    sent = args.rounds * args.count
    print(
        f'sensor_msgs/Image rgb8, {args.qos}, {args.rate:g} Hz, {args.rounds} rounds x '
        f'{args.count} images per variant, interleaved; discovery '
        f'{os.environ.get("ROS_AUTOMATIC_DISCOVERY_RANGE")}'
    )
    print('\n| image | variant | received | p50 ms | p95 ms | p50 ratio default/variant |')
    print('|---|---|---|---|---|---|')
    for size in SIZES:
        base = samples[(size, variants[0])]
        for variant in variants:
            got = samples[(size, variant)]
            if not got:
                print(f'| {size} | {variant} | 0/{sent} | - | - | - |')
                continue
            p50, p95 = np.percentile(got, 50), np.percentile(got, 95)
            ratio = f'{np.percentile(base, 50) / p50:.1f}' if base else '-'
            print(f'| {size} | {variant} | {len(got)}/{sent} | {p50:.2f} | {p95:.2f} | {ratio} |')


if __name__ == '__main__':
    main()
