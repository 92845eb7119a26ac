"""The sam2_tracker node.

Foundation version: it validates every incoming image and publishes a TrackedObjectArray
stamped with the source header for each frame. The streaming SAM 2 pipeline, prompts,
lifecycle transitions and diagnostics are wired in by the node issue; until then the
published arrays carry no objects, and the node says so at startup.
"""

from __future__ import annotations

import sys

from rcl_interfaces.msg import IntegerRange, ParameterDescriptor, ParameterType
import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from sam2_ros.msg import TrackedObjectArray
from sam2_ros.ros.image_conversion import (
    DEFAULT_MAX_PIXELS,
    ImageConversionError,
    image_msg_to_rgb,
)

READY_MESSAGE = 'sam2_tracker ready'


class TrackerNode(Node):
    """Subscribes to `image`, publishes `tracked_objects` with the source header."""

    def __init__(self, **kwargs) -> None:
        super().__init__('sam2_tracker', **kwargs)
        self.declare_parameter(
            'max_image_pixels',
            DEFAULT_MAX_PIXELS,
            ParameterDescriptor(
                type=ParameterType.PARAMETER_INTEGER,
                description='Images with more pixels than this are dropped as invalid.',
                integer_range=[IntegerRange(from_value=1, to_value=2**31 - 1, step=1)],
            ),
        )
        self.declare_parameter(
            'image_qos_reliability',
            'best_effort',
            ParameterDescriptor(
                type=ParameterType.PARAMETER_STRING,
                description="Reliability of the image subscription: 'best_effort' (sensor "
                "data, accepts every publisher) or 'reliable' (no frame lost in transport, "
                'for replay and large uncompressed images).',
                read_only=True,
            ),
        )
        self.declare_parameter(
            'image_qos_depth',
            1,
            ParameterDescriptor(
                type=ParameterType.PARAMETER_INTEGER,
                description='History depth of the image subscription.',
                integer_range=[IntegerRange(from_value=1, to_value=100, step=1)],
                read_only=True,
            ),
        )
        reliability = self.get_parameter('image_qos_reliability').value
        if reliability not in ('best_effort', 'reliable'):
            raise ValueError(
                f"image_qos_reliability must be 'best_effort' or 'reliable', got '{reliability}'"
            )
        image_qos = QoSProfile(
            history=HistoryPolicy.KEEP_LAST,
            depth=self.get_parameter('image_qos_depth').value,
            reliability=ReliabilityPolicy.BEST_EFFORT
            if reliability == 'best_effort'
            else ReliabilityPolicy.RELIABLE,
        )
        self.frames_received = 0
        self.frames_invalid = 0
        self._publisher = self.create_publisher(TrackedObjectArray, 'tracked_objects', 10)
        self._subscription = self.create_subscription(Image, 'image', self._on_image, image_qos)
        self.get_logger().warning(
            'the tracking pipeline is not wired into this node yet: '
            'tracked_objects carries no objects'
        )
        self.get_logger().info(
            f'{READY_MESSAGE}: image <- {self._subscription.topic_name}, '
            f'tracked objects -> {self._publisher.topic_name}'
        )

    def _on_image(self, msg: Image) -> None:
        self.frames_received += 1
        max_pixels = self.get_parameter('max_image_pixels').value
        try:
            image_msg_to_rgb(msg, max_pixels=max_pixels)
        except ImageConversionError as error:
            self.frames_invalid += 1
            self.get_logger().warning(
                f'dropped invalid image ({self.frames_invalid} so far): {error}',
                throttle_duration_sec=5.0,
            )
            return
        out = TrackedObjectArray()
        out.header = msg.header
        out.image_height = msg.height
        out.image_width = msg.width
        self._publisher.publish(out)


def main(args=None) -> int:
    """Run the node until SIGINT or an external shutdown; return the exit code."""
    rclpy.init(args=args)
    node = None
    try:
        node = TrackerNode()
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except ValueError as error:  # invalid parameters: say why, exit non-zero
        rclpy.logging.get_logger('sam2_tracker').fatal(str(error))
        return 2
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
