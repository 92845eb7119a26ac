"""Measurement: semi-synthetic sequences with exact ground truth, metrics, oracle doubles.

May import sam2_ros.core only (no ROS, no torch), so that tools and tests use it anywhere.
"""
