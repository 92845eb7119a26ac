"""ROS-free algorithms: tracking, propagation, drift handling, mask encodings.

Nothing in this package imports rclpy; everything is testable with numpy arrays alone.
"""
