"""Shared ROS plumbing: message conversions, images, callbacks, logging, process and shutdown.

May import rclpy, ROS messages and sam2_ros.core; used by the tracker, the console and the tools.
"""
