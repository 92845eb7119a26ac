"""Start the sam2_tracker node on a camera stream, and optionally RViz and the browser console.

The node's parameters come from params_file (config/sam2_ros.yaml by default). The launch
arguments that map to a node parameter (model, checkpoint, device, detector_model,
sam2_image_size, keyframe_mode, untrained_models, image_transport, image_reliability,
autostart) override the
file only when they are given; left empty they keep the file's value. use_sim_time always
applies. Boolean arguments take true/false and True/False.

Usage:
  # A camera driver's topics; topic names given here are resolved in `namespace`, so give
  # absolute names when the camera lives elsewhere.
  ros2 launch sam2_ros sam2_tracker.launch.py \
      image:=/camera/color/image_raw camera_info:=/camera/color/camera_info

  # Its JPEG stream (subscribes to /camera/color/image_raw/compressed)
  ros2 launch sam2_ros sam2_tracker.launch.py \
      image:=/camera/color/image_raw image_transport:=compressed

  # RViz with the overlay; Publish Point clicks are projected through camera_info when the
  # fixed frame is the camera's optical frame
  ros2 launch sam2_ros sam2_tracker.launch.py image:=/camera/color/image_raw rviz:=true \
      rviz_fixed_frame:=camera_color_optical_frame

  # A local SAM 2.1 checkpoint instead of the Hugging Face Hub download, on the second GPU
  ros2 launch sam2_ros sam2_tracker.launch.py image:=/camera/color/image_raw \
      model:=small checkpoint:=$HOME/models/sam2.1_hiera_small.pt device:=cuda:1

  # The browser console on http://127.0.0.1:8080/ (click to prompt; see the README)
  ros2 launch sam2_ros sam2_tracker.launch.py image:=/camera/color/image_raw web_console:=true

  # Objects in 3D from a RealSense with depth aligned to colour (see the README for a ZED and
  # an OAK-D): 3D fields on tracked_objects, object_markers and object_cloud
  ros2 launch sam2_ros sam2_tracker.launch.py use_depth:=true \
      image:=/camera/camera/color/image_raw camera_info:=/camera/camera/color/camera_info \
      depth:=/camera/camera/aligned_depth_to_color/image_raw \
      depth_camera_info:=/camera/camera/aligned_depth_to_color/camera_info

  # Images over Fast DDS shared memory (config/fastdds_shm.xml) for the processes this file
  # starts; export FASTDDS_DEFAULT_PROFILES_FILE to the same file for the camera driver
  ros2 launch sam2_ros sam2_tracker.launch.py image:=/camera/color/image_raw fastdds_shm:=true

  # Several trackers: one namespace each (topics and services under /left/...)
  ros2 launch sam2_ros sam2_tracker.launch.py namespace:=left image:=/left/image_raw

List every argument with `ros2 launch sam2_ros sam2_tracker.launch.py --show-args`.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchContext, LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node

PACKAGE = 'sam2_ros'
# 'True'/'False' too: ROS documentation and tutorials write them so.
BOOL_CHOICES = ['true', 'false', 'True', 'False']

# Launch argument -> node parameter. An empty argument keeps the params file's value.
STRING_OVERRIDES = {
    'model': 'sam2_model',
    'checkpoint': 'sam2_checkpoint',
    'device': 'device',
    'detector_model': 'detector_model',
    'image_transport': 'image_transport',
    'image_reliability': 'image_qos_reliability',
    'depth_transport': 'depth_transport',
    'keyframe_mode': 'keyframe_mode',
}
# Parameters the browser console shares with the tracker (how to read the image).
SHARED_WITH_CONSOLE = ('image_transport', 'image_qos_reliability')
BOOL_OVERRIDES = {
    'untrained_models': 'untrained_models',
    'autostart': 'autostart',
    'use_depth': 'use_depth',
}
INT_OVERRIDES = {'sam2_image_size': 'sam2_image_size'}
# detector_model:=none sets the parameter to '' (no detector), which an empty argument cannot.
NO_DETECTOR = 'none'
# Arguments holding a file path: `name:=~/x` reaches the launch file without tilde expansion.
PATH_ARGUMENTS = ('checkpoint', 'detector_model')
QUIET_LOGGERS_ARGS = [
    arg
    for logger in ('rcl', 'rmw_fastrtps_cpp', 'rmw_cyclonedds_cpp', 'rmw_zenoh_cpp')
    for arg in ('--log-level', f'{logger}:=info')
]


def _bool(name: str, value: str) -> bool:
    """Return the bool of a 'true'/'false' launch argument."""
    lowered = value.strip().lower()
    if lowered not in ('true', 'false'):
        raise ValueError(f"launch argument {name} must be 'true' or 'false', got '{value}'")
    return lowered == 'true'


def parameter_overrides(context: LaunchContext) -> dict:
    """Return the node parameters that the given (non-empty) launch arguments set."""
    overrides = {}
    for argument, parameter in STRING_OVERRIDES.items():
        value = LaunchConfiguration(argument).perform(context).strip()
        if not value:
            continue
        if argument == 'detector_model' and value.lower() == NO_DETECTOR:
            value = ''
        elif argument in PATH_ARGUMENTS:
            value = os.path.expanduser(value)
        overrides[parameter] = value
    for argument, parameter in BOOL_OVERRIDES.items():
        value = LaunchConfiguration(argument).perform(context).strip()
        if value:
            overrides[parameter] = _bool(argument, value)
    for argument, parameter in INT_OVERRIDES.items():
        value = LaunchConfiguration(argument).perform(context).strip()
        if value:
            if not value.isdigit():
                raise ValueError(f"launch argument {argument} must be an integer, got '{value}'")
            overrides[parameter] = int(value)
    return overrides


def fastdds_profile(context: LaunchContext) -> list:
    """With fastdds_shm:=true, the shared-memory Fast DDS profile for the processes started."""
    if not _bool('fastdds_shm', LaunchConfiguration('fastdds_shm').perform(context)):
        return []
    profile = os.path.join(get_package_share_directory(PACKAGE), 'config', 'fastdds_shm.xml')
    return [SetEnvironmentVariable('FASTDDS_DEFAULT_PROFILES_FILE', profile)]


def _launch_setup(context: LaunchContext) -> list:
    """Create the node, RViz and the browser console from the launch arguments."""
    use_sim_time = _bool('use_sim_time', LaunchConfiguration('use_sim_time').perform(context))
    params_file = os.path.expanduser(LaunchConfiguration('params_file').perform(context))
    namespace = LaunchConfiguration('namespace')
    log_level = LaunchConfiguration('log_level').perform(context)
    # With debug, keep the ROS client library and middleware loggers at info: their debug
    # messages would drown the node's.
    quiet = [] if log_level != 'debug' else QUIET_LOGGERS_ARGS
    image = LaunchConfiguration('image')
    overrides = parameter_overrides(context)
    # A lifecycle node; the autostart parameter makes it configure and activate itself. The
    # LifecycleNode action (rather than Node) also lets a launch file drive its transitions
    # with ChangeState events (with autostart:=false).
    tracker = LifecycleNode(
        package=PACKAGE,
        executable='sam2_tracker_node',
        name='sam2_tracker',
        namespace=namespace,
        parameters=[
            params_file,
            {**overrides, 'use_sim_time': use_sim_time},
        ],
        remappings=[
            ('image', image),
            ('camera_info', LaunchConfiguration('camera_info')),
            ('depth', LaunchConfiguration('depth')),
            ('depth/camera_info', LaunchConfiguration('depth_camera_info')),
        ],
        arguments=['--ros-args', '--log-level', log_level, *quiet],
        output='screen',
        emulate_tty=True,
    )
    rviz_arguments = [
        '-d',
        os.path.join(get_package_share_directory(PACKAGE), 'config', 'sam2_ros.rviz'),
    ]
    fixed_frame = LaunchConfiguration('rviz_fixed_frame').perform(context).strip()
    if fixed_frame:
        rviz_arguments += ['-f', fixed_frame]
    rviz = Node(
        package='rviz2',
        executable='rviz2',
        namespace=namespace,
        arguments=rviz_arguments,
        parameters=[{'use_sim_time': use_sim_time}],
        # The config's relative topics `overlay` and `image` resolve in the node's namespace;
        # `image` (and `image/compressed`, typed in the display) follows the tracker's input.
        remappings=[('image', image), ('image/compressed', [image, '/compressed'])],
        output='screen',
        condition=IfCondition(LaunchConfiguration('rviz')),
    )
    # The console reads the same params file, whose `/**` section sets image_transport and
    # image_qos_reliability for every node, and the same launch overrides of those two: it
    # reads the image as the tracker does.
    port = LaunchConfiguration('web_port').perform(context).strip()
    if not port.isdigit() or int(port) > 65535:
        raise ValueError(f"launch argument web_port must be a TCP port number, got '{port}'")
    console_parameters = {
        'host': LaunchConfiguration('web_host').perform(context),
        'port': int(port),
        'token': LaunchConfiguration('web_token').perform(context),
        **{k: v for k, v in overrides.items() if k in SHARED_WITH_CONSOLE},
    }
    console = Node(
        package=PACKAGE,
        executable='sam2_web_console',
        name='sam2_web_console',
        namespace=namespace,
        parameters=[params_file, console_parameters],
        remappings=[('image', image)],
        arguments=['--ros-args', '--log-level', log_level, *quiet],
        output='screen',
        emulate_tty=True,
        condition=IfCondition(LaunchConfiguration('web_console')),
    )
    return [*fastdds_profile(context), tracker, rviz, console]


def generate_launch_description() -> LaunchDescription:
    """Declare the launch arguments, the sam2_tracker node, RViz and the browser console."""
    default_params = os.path.join(get_package_share_directory(PACKAGE), 'config', 'sam2_ros.yaml')
    keep = "Empty: the params file's value."
    arguments = [
        DeclareLaunchArgument(
            'image',
            default_value='image',
            description='Input image topic (sensor_msgs/Image); with image_transport:=compressed '
            'the node subscribes to <image>/compressed.',
        ),
        DeclareLaunchArgument(
            'camera_info',
            default_value='camera_info',
            description='Camera info topic (sensor_msgs/CameraInfo) of the image.',
        ),
        DeclareLaunchArgument(
            'use_depth',
            default_value='',
            choices=['', *BOOL_CHOICES],
            description='Subscribe to depth aligned to the image and give objects 3D (parameter '
            f'use_depth). {keep}',
        ),
        DeclareLaunchArgument(
            'depth',
            default_value='depth',
            description='Depth image topic aligned to the image (16UC1 mm or 32FC1 m), used '
            'with use_depth:=true; compressed transports subscribe to <depth>/compressedDepth or '
            '<depth>/compressed.',
        ),
        DeclareLaunchArgument(
            'depth_camera_info',
            default_value='depth/camera_info',
            description='Camera info topic of the depth image.',
        ),
        DeclareLaunchArgument(
            'depth_transport',
            default_value='',
            choices=['', 'raw', 'compressedDepth', 'compressed'],
            description=f'Transport of the depth image (parameter depth_transport). {keep}',
        ),
        DeclareLaunchArgument(
            'image_transport',
            default_value='',
            choices=['', 'raw', 'compressed'],
            description=f'Transport of the input image: raw Image or CompressedImage. {keep}',
        ),
        DeclareLaunchArgument(
            'namespace',
            default_value='',
            description='Namespace of the node, its topics and services (and of RViz).',
        ),
        DeclareLaunchArgument(
            'params_file',
            default_value=default_params,
            description='YAML file with the node parameters.',
        ),
        DeclareLaunchArgument(
            'model',
            default_value='',
            choices=['', 'tiny', 'small', 'base_plus', 'large'],
            description=f'SAM 2.1 model size (parameter sam2_model). {keep}',
        ),
        DeclareLaunchArgument(
            'checkpoint',
            default_value='',
            description='Local SAM 2.1 checkpoint (.pt) matching model (parameter '
            f"sam2_checkpoint); the file's empty value downloads the official weights. {keep}",
        ),
        DeclareLaunchArgument(
            'device',
            default_value='',
            description=f'Torch device: auto, cpu, cuda or cuda:N. {keep}',
        ),
        DeclareLaunchArgument(
            'detector_model',
            default_value='',
            description='Re-anchoring detector: a YOLO weights name (yolov10n.pt) or path; '
            f"'{NO_DETECTOR}' disables re-anchoring. {keep}",
        ),
        DeclareLaunchArgument(
            'sam2_image_size',
            default_value='',
            description='SAM 2 input size in pixels (parameter sam2_image_size): 256 to 1024, a '
            f'multiple of 64; smaller is faster and coarser. {keep}',
        ),
        DeclareLaunchArgument(
            'keyframe_mode',
            default_value='',
            choices=['', 'async', 'sync', 'fixed_delay'],
            description='Where SAM 2 runs (parameter keyframe_mode): async off the frame path, '
            f'so every frame is answered; sync inside it; fixed_delay for repeatable runs. {keep}',
        ),
        DeclareLaunchArgument(
            'untrained_models',
            default_value='',
            choices=['', *BOOL_CHOICES],
            description='Build the models with random weights, for testing without weights. '
            f'{keep}',
        ),
        DeclareLaunchArgument(
            'use_sim_time',
            default_value='false',
            choices=BOOL_CHOICES,
            description='Use the /clock topic (rosbag replay, simulation).',
        ),
        DeclareLaunchArgument(
            'autostart',
            default_value='',
            choices=['', *BOOL_CHOICES],
            description='Configure and activate the lifecycle node at startup; false waits for '
            f'`ros2 lifecycle set`. {keep}',
        ),
        DeclareLaunchArgument(
            'image_reliability',
            default_value='',
            choices=['', 'best_effort', 'reliable'],
            description='QoS reliability of the image subscription (parameter '
            'image_qos_reliability): best_effort accepts every camera, reliable loses no frame '
            f'in transport. {keep}',
        ),
        DeclareLaunchArgument(
            'rviz',
            default_value='false',
            choices=BOOL_CHOICES,
            description='Also start rviz2 with config/sam2_ros.rviz (overlay image, input image, '
            'Publish Point on /clicked_point).',
        ),
        DeclareLaunchArgument(
            'rviz_fixed_frame',
            default_value='',
            description="RViz fixed frame; set the camera's optical frame for Publish Point "
            "prompts. Empty: the RViz config's (map).",
        ),
        DeclareLaunchArgument(
            'web_console',
            default_value='false',
            choices=BOOL_CHOICES,
            description='Also start sam2_web_console: click on the live stream in a browser to '
            'prompt, see masks, export them.',
        ),
        DeclareLaunchArgument(
            'web_host',
            default_value='127.0.0.1',
            description='Address the browser console listens on; anything but loopback needs '
            'web_token.',
        ),
        DeclareLaunchArgument(
            'web_port',
            default_value='8080',
            description='TCP port of the browser console.',
        ),
        DeclareLaunchArgument(
            'web_token',
            default_value='',
            description='Secret the console page must present (open http://HOST:PORT/#token=...); '
            'required with a non-loopback web_host, at least 16 characters.',
        ),
        DeclareLaunchArgument(
            'fastdds_shm',
            default_value='false',
            choices=BOOL_CHOICES,
            description='Fast DDS over shared memory (config/fastdds_shm.xml, discovery on '
            '127.0.0.1 without multicast) for the processes this launch starts: a raw image '
            'arrives several times sooner than over UDP loopback (README). rmw_fastrtps only.',
        ),
        DeclareLaunchArgument(
            'log_level',
            default_value='info',
            choices=['debug', 'info', 'warn', 'error', 'fatal'],
            description='Logging level of the node.',
        ),
    ]
    return LaunchDescription([*arguments, OpaqueFunction(function=_launch_setup)])
