"""Replay a rosbag2 into the sam2_tracker node, for regression tests and offline runs.

The tracker starts with use_sim_time:=true and a reliable image subscription, and the bag
plays once the node is active (model loaded), so no frame is lost to the startup. The
playback, `ros2 bag play <bag> --clock --rate <rate> [--loop] [--start-paused]`, plays only
the node's inputs (the image, raw and compressed, camera_info, the click topics, /tf and
/tf_static) and offers the image and camera_info topics reliably, whatever QoS the bag
recorded. record:=true (or an output_bag) also records the node's outputs tracked_objects
and label_image (in the node's namespace) and /diagnostics with
`ros2 bag record --use-sim-time`, so the new bag's times line up with the replayed stream.
When the playback ends, everything shuts down a few seconds later (the node finishes its last
frames, the recorder closes its bag) unless shutdown_after_play:=false; with loop:=true it
never ends. A node that fails to configure (a missing checkpoint, say) never becomes active:
nothing plays, and its log says why.

The replay publishes the bag's topics and /clock on the ROS graph, where they would mix with
a live camera's and other users' topics. Keep it on this host and off shared domains by
exporting, before the launch (a robot's own settings stay the robot's choice, so this launch
file sets none of them):
  export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST  # Iron and newer
  export ROS_LOCALHOST_ONLY=1                     # Humble
  export ROS_DOMAIN_ID=42                         # an id no one else on the network uses

Usage:
  ros2 launch sam2_ros sam2_replay.launch.py bag:=~/bags/desk_scene \
      image:=/camera/color/image_raw camera_info:=/camera/color/camera_info

  # Half speed with RViz, recording the outputs for comparison with an earlier run
  ros2 launch sam2_ros sam2_replay.launch.py bag:=~/bags/desk_scene rate:=0.5 rviz:=true \
      image:=/camera/color/image_raw record:=true output_bag:=/tmp/desk_scene_sam2

  # The pipeline end to end without weights (random models)
  ros2 launch sam2_ros sam2_replay.launch.py bag:=~/bags/desk_scene untrained_models:=true \
      detector_model:=none

  # A bag made with sam2_make_bag --depth: objects in 3D
  ros2 launch sam2_ros sam2_replay.launch.py bag:=~/bags/scene_depth use_depth:=true \
      image:=/camera/image_raw camera_info:=/camera/camera_info \
      depth:=/camera/depth/image_raw depth_camera_info:=/camera/depth/camera_info

Other arguments of sam2_tracker.launch.py (rviz_fixed_frame, ...) pass through as well;
use_sim_time and image_reliability are fixed to true and reliable.

The launch learns that the node is active by asking it (its get_state service, every half
second, with a line every 15 s while it waits), not from its transition event, which a node
that activates itself at startup publishes before the launch is listening.
"""

import os
import tempfile

from ament_index_python.packages import get_package_share_directory
from launch import Event, EventHandler, LaunchContext, LaunchDescription
from launch.actions import (
    DeclareLaunchArgument,
    EmitEvent,
    ExecuteProcess,
    IncludeLaunchDescription,
    LogInfo,
    OpaqueFunction,
    RegisterEventHandler,
    SetEnvironmentVariable,
    TimerAction,
)
from launch.event_handlers import OnProcessExit, OnShutdown
from launch.events import Shutdown
from launch.launch_description_sources import PythonLaunchDescriptionSource
import launch.logging
from launch.substitutions import LaunchConfiguration
from launch_ros.ros_adapters import get_ros_node
import yaml

from sam2_ros.ros.lifecycle_wait import wait_for_state

PACKAGE = 'sam2_ros'
NODE_NAME = 'sam2_tracker'
# 'True'/'False' too: ROS documentation and tutorials write them so.
BOOL_CHOICES = ['true', 'false', 'True', 'False']
# Arguments passed on to sam2_tracker.launch.py under the same name.
FORWARDED = (
    'namespace',
    'image',
    'camera_info',
    'image_transport',
    'use_depth',
    'depth',
    'depth_camera_info',
    'depth_transport',
    'params_file',
    'model',
    'checkpoint',
    'device',
    'detector_model',
    'sam2_image_size',
    'keyframe_mode',
    'untrained_models',
    'autostart',
    'rviz',
    'log_level',
    'fastdds_shm',
)
# The outputs recorded with record:=true (relative ones in the node's namespace).
RECORDED_TOPICS = ('tracked_objects', 'label_image', '/diagnostics')
# Seconds between the end of the playback and the shutdown: the node's last frames.
SHUTDOWN_GRACE_S = 5.0
# Seconds the playback waits once the node is active, when recording: the recorder discovers
# the node's publishers in that time.
RECORD_DELAY_S = 1.0


class TrackerActive(Event):
    """Emitted once sam2_tracker answers get_state with 'active'."""

    name = 'sam2_replay.TrackerActive'


def _wait_until_active(context: LaunchContext, tracker: str) -> None:
    """Ask the tracker for its state until it is active, then emit TrackerActive.

    Polling get_state rather than waiting for its 'active' transition event: with autostart
    the node activates itself before this launch's subscription to the event is matched, and
    the event is lost (the playback then never started).
    """
    logger = launch.logging.get_logger('sam2_replay')
    active = wait_for_state(
        get_ros_node(context),
        tracker,
        'active',
        should_stop=lambda: context.is_shutdown,
        report=logger.info,
    )
    if active:
        context.asyncio_loop.call_soon_threadsafe(context.emit_event_sync, TrackerActive())


def _start_waiting(context: LaunchContext, tracker: str) -> None:
    """Run `_wait_until_active` on a worker thread of the launch's event loop."""
    context.add_completion_future(
        context.asyncio_loop.run_in_executor(None, _wait_until_active, context, tracker)
    )


def _bool(name: str, value: str) -> bool:
    """Return the bool of a 'true'/'false' launch argument."""
    lowered = value.strip().lower()
    if lowered not in ('true', 'false'):
        raise ValueError(f"launch argument {name} must be 'true' or 'false', got '{value}'")
    return lowered == 'true'


def _absolute(topic: str, namespace: str) -> str:
    """Return the topic name as a node in the namespace resolves it."""
    if topic.startswith('/'):
        return topic
    namespace = namespace.strip('/')
    return f'/{namespace}/{topic}' if namespace else f'/{topic}'


def _reliable_qos_overrides(topics: list[str]) -> str:
    """Write a `ros2 bag play` QoS override file offering the topics reliably; return its path.

    A reliable publisher serves both reliable and best-effort subscribers, whatever QoS the
    camera driver that the bag recorded used.
    """
    profile = {'history': 'keep_last', 'depth': 10, 'reliability': 'reliable'}
    with tempfile.NamedTemporaryFile(
        'w', prefix='sam2_replay_qos_', suffix='.yaml', delete=False
    ) as overrides:
        yaml.safe_dump({topic: profile for topic in topics}, overrides)
    return overrides.name


def _remove(context: LaunchContext, path: str) -> None:
    """Delete a temporary file of the launch."""
    del context
    try:
        os.remove(path)
    except OSError:
        pass


def _launch_setup(context: LaunchContext) -> list:
    """Create the bag playback and the optional recorder from the launch arguments."""

    def argument(name: str) -> str:
        return LaunchConfiguration(name).perform(context).strip()

    bag = os.path.expanduser(argument('bag'))
    if not os.path.exists(bag):
        raise FileNotFoundError(f"bag '{bag}' does not exist")
    try:
        rate = float(argument('rate'))
    except ValueError:
        rate = 0.0
    if not rate > 0.0:
        raise ValueError(f"rate must be a number greater than 0, got '{argument('rate')}'")
    output_bag = os.path.expanduser(argument('output_bag'))
    record = _bool('record', argument('record')) or bool(output_bag)

    namespace = argument('namespace')
    image = _absolute(argument('image'), namespace)
    camera_info = _absolute(argument('camera_info'), namespace)
    inputs = [image, f'{image}/compressed', camera_info]
    if _bool('use_depth', argument('use_depth') or 'false'):
        depth = _absolute(argument('depth'), namespace)
        depth_info = _absolute(argument('depth_camera_info'), namespace)
        inputs += [depth, f'{depth}/compressedDepth', f'{depth}/compressed', depth_info]
    clicks = [f'{image}_mouse_left', '/clicked_point', '/tf', '/tf_static']
    play_cmd = ['ros2', 'bag', 'play', bag, '--clock', '--rate', str(rate)]
    play_cmd += ['--topics', *inputs, *clicks]
    qos_overrides = _reliable_qos_overrides(inputs)
    play_cmd += ['--qos-profile-overrides-path', qos_overrides]
    if _bool('loop', argument('loop')):
        play_cmd.append('--loop')
    if _bool('start_paused', argument('start_paused')):
        play_cmd.append('--start-paused')
    if record:
        play_cmd += ['--delay', str(RECORD_DELAY_S)]
    play = ExecuteProcess(cmd=play_cmd, name='bag_play', output='screen')

    tracker = _absolute(NODE_NAME, namespace)
    actions = []
    if _bool('fastdds_shm', argument('fastdds_shm')):  # the playback and the tracker alike
        profile = os.path.join(get_package_share_directory(PACKAGE), 'config', 'fastdds_shm.xml')
        actions.append(SetEnvironmentVariable('FASTDDS_DEFAULT_PROFILES_FILE', profile))
    actions += [
        LogInfo(msg=f'sam2_replay: the bag plays once {tracker} is active'),
        RegisterEventHandler(
            EventHandler(
                matcher=lambda event: isinstance(event, TrackerActive),
                entities=[LogInfo(msg=f'sam2_replay: {tracker} is active, playing {bag}'), play],
                handle_once=True,
            )
        ),
        OpaqueFunction(function=_start_waiting, args=[tracker]),
    ]
    actions.append(
        RegisterEventHandler(
            OnShutdown(on_shutdown=[OpaqueFunction(function=_remove, args=[qos_overrides])])
        )
    )
    if _bool('shutdown_after_play', argument('shutdown_after_play')):
        actions.append(
            RegisterEventHandler(
                OnProcessExit(
                    target_action=play,
                    on_exit=[
                        TimerAction(
                            period=SHUTDOWN_GRACE_S,
                            actions=[EmitEvent(event=Shutdown(reason='bag playback ended'))],
                        )
                    ],
                )
            )
        )
    if record:
        # Positional topics on Humble; Jazzy and newer deprecate them for --topics.
        topics_flag = [] if os.environ.get('ROS_DISTRO') == 'humble' else ['--topics']
        recorded = [_absolute(topic, namespace) for topic in RECORDED_TOPICS]
        record_cmd = ['ros2', 'bag', 'record', '--use-sim-time', *topics_flag, *recorded]
        if output_bag:
            record_cmd += ['--output', output_bag]
        actions.append(ExecuteProcess(cmd=record_cmd, name='bag_record', output='screen'))

    return actions


def generate_launch_description() -> LaunchDescription:
    """Declare the launch arguments, the bag playback, the recorder and the tracker."""
    default_params = os.path.join(get_package_share_directory(PACKAGE), 'config', 'sam2_ros.yaml')
    keep = "Empty: the params file's value."
    arguments = [
        DeclareLaunchArgument('bag', description='Path of the rosbag2 to play (required).'),
        DeclareLaunchArgument(
            'rate', default_value='1.0', description='Playback rate (ros2 bag play --rate).'
        ),
        DeclareLaunchArgument(
            'loop',
            default_value='false',
            choices=BOOL_CHOICES,
            description='Play the bag in a loop.',
        ),
        DeclareLaunchArgument(
            'start_paused',
            default_value='false',
            choices=BOOL_CHOICES,
            description='Start the playback paused (resume with the /rosbag2_player/resume '
            'service).',
        ),
        DeclareLaunchArgument(
            'fastdds_shm',
            default_value='false',
            choices=BOOL_CHOICES,
            description='Fast DDS over shared memory (config/fastdds_shm.xml) for the playback '
            'and the tracker: raw images arrive sooner than over UDP loopback.',
        ),
        DeclareLaunchArgument(
            'shutdown_after_play',
            default_value='true',
            choices=BOOL_CHOICES,
            description='Shut everything down a few seconds after the playback ends.',
        ),
        DeclareLaunchArgument(
            'namespace',
            default_value='',
            description='Namespace of the node; relative topic names resolve in it.',
        ),
        DeclareLaunchArgument(
            'image',
            default_value='image',
            description='Image topic in the bag (sensor_msgs/Image; with '
            'image_transport:=compressed, <image>/compressed).',
        ),
        DeclareLaunchArgument(
            'camera_info',
            default_value='camera_info',
            description='Camera info topic in the bag.',
        ),
        DeclareLaunchArgument(
            'image_transport',
            default_value='',
            choices=['', 'raw', 'compressed'],
            description=f'Transport of the input image: raw Image or CompressedImage. {keep}',
        ),
        DeclareLaunchArgument(
            'use_depth',
            default_value='',
            choices=['', *BOOL_CHOICES],
            description='Also play the aligned depth and give objects 3D (parameter use_depth). '
            f'{keep}',
        ),
        DeclareLaunchArgument(
            'depth',
            default_value='depth',
            description='Depth image topic in the bag (with use_depth:=true).',
        ),
        DeclareLaunchArgument(
            'depth_camera_info',
            default_value='depth/camera_info',
            description='Camera info topic of the depth image in the bag.',
        ),
        DeclareLaunchArgument(
            'depth_transport',
            default_value='',
            choices=['', 'raw', 'compressedDepth', 'compressed'],
            description=f'Transport of the depth image (parameter depth_transport). {keep}',
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
            description=f'Local SAM 2.1 checkpoint (.pt) matching model. {keep}',
        ),
        DeclareLaunchArgument(
            'device',
            default_value='',
            description=f'Torch device: auto, cpu, cuda or cuda:N. {keep}',
        ),
        DeclareLaunchArgument(
            'detector_model',
            default_value='',
            description='Re-anchoring detector: a YOLO weights name or path; none disables '
            f're-anchoring. {keep}',
        ),
        DeclareLaunchArgument(
            'sam2_image_size',
            default_value='',
            description=f'SAM 2 input size in pixels: 256 to 1024, a multiple of 64. {keep}',
        ),
        DeclareLaunchArgument(
            'keyframe_mode',
            default_value='',
            choices=['', 'async', 'sync', 'fixed_delay'],
            description=f'Where SAM 2 runs: async, sync or fixed_delay. {keep}',
        ),
        DeclareLaunchArgument(
            'untrained_models',
            default_value='',
            choices=['', *BOOL_CHOICES],
            description='Build the models with random weights, for testing without weights. '
            f'{keep}',
        ),
        # Declared here (the first declaration is what --show-args lists) because this file
        # fixes them for sam2_tracker.launch.py, whatever is given.
        DeclareLaunchArgument(
            'use_sim_time',
            default_value='true',
            choices=['true', 'True'],
            description="Always true here: the node follows the bag's /clock.",
        ),
        DeclareLaunchArgument(
            'image_reliability',
            default_value='reliable',
            choices=['reliable'],
            description='Always reliable here: no replayed frame is lost in transport.',
        ),
        DeclareLaunchArgument(
            'autostart',
            default_value='true',
            choices=['', *BOOL_CHOICES],
            description='Configure and activate the node at startup; the bag plays once it is '
            "active (with false, once you activate it). Empty: the params file's value.",
        ),
        DeclareLaunchArgument(
            'rviz',
            default_value='false',
            choices=BOOL_CHOICES,
            description='Also start rviz2 with config/sam2_ros.rviz.',
        ),
        DeclareLaunchArgument(
            'log_level',
            default_value='info',
            choices=['debug', 'info', 'warn', 'error', 'fatal'],
            description='Logging level of the node.',
        ),
        DeclareLaunchArgument(
            'record',
            default_value='false',
            choices=BOOL_CHOICES,
            description='Record /tracked_objects, /label_image and /diagnostics with '
            'ros2 bag record.',
        ),
        DeclareLaunchArgument(
            'output_bag',
            default_value='',
            description='Path of the recorded bag (must not exist); setting it implies '
            "record:=true. Empty: ros2 bag record's timestamped folder in the current "
            'directory when record:=true, else no recording.',
        ),
    ]
    tracker_launch = os.path.join(
        get_package_share_directory(PACKAGE), 'launch', 'sam2_tracker.launch.py'
    )
    tracker = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(tracker_launch),
        launch_arguments={
            **{name: LaunchConfiguration(name) for name in FORWARDED},
            'use_sim_time': 'true',
            'image_reliability': 'reliable',
        }.items(),
    )
    # The playback's event handlers are registered before the tracker starts.
    return LaunchDescription([*arguments, OpaqueFunction(function=_launch_setup), tracker])
