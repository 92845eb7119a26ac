"""The tracker node: lifecycle node, its tracking worker, parameters and diagnostics.

May import sam2_ros.core, sam2_ros.models (when configured), sam2_ros.ros and ROS.
"""
