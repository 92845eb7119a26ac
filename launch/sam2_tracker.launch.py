"""Start the sam2_tracker node on a camera stream.

Usage: ros2 launch sam2_ros sam2_tracker.launch.py image:=/camera/color/image_raw
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def generate_launch_description():
    """Declare the launch arguments and the sam2_tracker node."""
    default_params = os.path.join(
        get_package_share_directory('sam2_ros'), 'config', 'sam2_ros.yaml'
    )
    arguments = [
        DeclareLaunchArgument(
            'image', default_value='image', description='Input sensor_msgs/Image topic.'
        ),
        DeclareLaunchArgument(
            'namespace', default_value='', description='Namespace of the node and its topics.'
        ),
        DeclareLaunchArgument(
            'params_file',
            default_value=default_params,
            description='YAML file with the node parameters.',
        ),
        DeclareLaunchArgument(
            'image_reliability',
            default_value='best_effort',
            choices=['best_effort', 'reliable'],
            description='Reliability of the image subscription.',
        ),
        DeclareLaunchArgument(
            'log_level',
            default_value='info',
            choices=['debug', 'info', 'warn', 'error', 'fatal'],
            description='Logging level of the node.',
        ),
    ]
    tracker = Node(
        package='sam2_ros',
        executable='sam2_tracker_node',
        name='sam2_tracker',
        namespace=LaunchConfiguration('namespace'),
        parameters=[
            LaunchConfiguration('params_file'),
            {'image_qos_reliability': LaunchConfiguration('image_reliability')},
        ],
        remappings=[('image', LaunchConfiguration('image'))],
        arguments=['--ros-args', '--log-level', LaunchConfiguration('log_level')],
        output='screen',
        emulate_tty=True,
    )
    return LaunchDescription([*arguments, tracker])
