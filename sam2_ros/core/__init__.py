"""The core: pure tracking types and algorithms (pipeline, flow, drift, prompts, masks, depth).

May import numpy and OpenCV only: never rclpy, ROS messages or torch, and no other sam2_ros
package. Everything here is testable with numpy arrays alone.
"""
