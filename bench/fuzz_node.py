"""Fuzz a live sam2_tracker node for as long as you like (the CI run is test/test_fuzz.py).

    python bench/fuzz_node.py --inputs 10000 --seed 7 [--transport compressed]

Runs the node in-process with untrained SAM 2.1 tiny at 256 px (loopback only, a private
ROS_DOMAIN_ID), sends seeded hostile inputs in bursts (see test/node_fuzzer.py), prints the
report, and exits 1 if anything crashed, went unanswered, was refused without a reason or
failed a check between bursts. A failing seed replays exactly.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
import sys

from sam2_ros.ros.ros_env import apply_loopback_environment


def main() -> int:
    """Run the fuzzer; return 0 when its report is clean."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--inputs', type=int, default=10_000, help='inputs to send (10000)')
    parser.add_argument('--seed', type=int, default=0, help='random seed (0)')
    parser.add_argument('--burst', type=int, default=50, help='inputs between checks (50)')
    parser.add_argument('--transport', choices=('raw', 'compressed'), default='raw')
    args = parser.parse_args()
    if args.inputs < 1 or args.burst < 1:
        parser.error('--inputs and --burst must be >= 1')
    apply_loopback_environment()
    os.environ.setdefault('YOLO_OFFLINE', '1')
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'test'))
    from node_fuzzer import NodeFuzzer
    from node_harness import TrackerHarness

    harness = TrackerHarness(image_transport=args.transport, service_timeout_sec=30.0)
    fuzzer = None
    try:
        fuzzer = NodeFuzzer(harness, args.seed, compressed=args.transport == 'compressed')
        report = fuzzer.run(args.inputs, args.burst)
    finally:
        if fuzzer is not None:
            fuzzer.close()
        harness.close()
    print(report.summary())
    return 0 if report.ok else 1


if __name__ == '__main__':
    sys.exit(main())
