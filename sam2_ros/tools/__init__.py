"""Command-line tools: bag making, replay, evaluation, rendering, and the demo that runs them.

May import sam2_ros.core, sam2_ros.evaluation, sam2_ros.ros and ROS; never torch (the demo
reaches models and the tracker through the tracker's process only).
"""
