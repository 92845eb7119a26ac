"""The browser console: its ROS node, web server, protocol, export, access control, page.

May import sam2_ros.core, sam2_ros.ros and ROS; never torch (it runs beside the tracker).
"""
