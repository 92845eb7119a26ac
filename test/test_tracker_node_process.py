"""The installed sam2_tracker_node executable, run as a separate process."""

from builtin_interfaces.msg import Time
import numpy as np
import pytest
from rclpy.qos import QoSProfile, ReliabilityPolicy
from ros_testing import spin_until
from sensor_msgs.msg import Image

from sam2_ros.msg import TrackedObjectArray
from sam2_ros.ros.image_conversion import array_to_image_msg
from sam2_ros.ros.tracker_node import READY_MESSAGE

pytestmark = pytest.mark.timeout(90)


def test_starts_answers_with_source_header_and_exits_zero_on_sigint(tracker_process, make_node):
    process = tracker_process(
        'image_qos_reliability:=reliable',
        'image_qos_depth:=10',
        'untrained_models:=true',
        'sam2_image_size:=256',
        'device:=cpu',
    )
    process.wait_for(READY_MESSAGE, timeout=60)

    node, executor = make_node('node_process_test')
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    publisher = node.create_publisher(Image, 'image', qos)
    received = []
    node.create_subscription(TrackedObjectArray, 'tracked_objects', received.append, 10)
    assert spin_until(
        executor,
        lambda: (
            publisher.get_subscription_count() > 0
            and node.count_publishers('/tracked_objects') > 0
        ),
        timeout=20,
    )

    frame = np.full((24, 32, 3), 128, dtype=np.uint8)
    good = array_to_image_msg(frame, 'bgr8')
    good.header.stamp = Time(sec=1700000000, nanosec=123456789)
    good.header.frame_id = 'camera_optical_frame'
    bad = array_to_image_msg(frame, 'bgr8')
    bad.step = 5  # smaller than width * 3: must be dropped, not crash the node
    bad.header.frame_id = 'bad'
    for msg in (bad, good):
        publisher.publish(msg)
    assert spin_until(executor, lambda: received, timeout=20)
    spin_until(executor, lambda: False, timeout=0.5)  # a late answer to `bad` would show

    assert [m.header.frame_id for m in received] == ['camera_optical_frame']
    answer = received[0]
    assert answer.header.stamp == good.header.stamp
    assert (answer.image_width, answer.image_height) == (32, 24)
    process.wait_for('dropped invalid image.*step 5 is smaller', timeout=10)
    assert process.returncode is None, 'the node must survive a malformed image'

    assert process.interrupt() == 0


def test_invalid_parameter_fails_configure_and_the_node_stays_up(tracker_process):
    process = tracker_process('image_qos_reliability:=sometimes', 'untrained_models:=true')
    process.wait_for(
        'configure failed: image_qos_reliability must be one of best_effort, reliable; '
        "got 'sometimes'",
        timeout=30,
    )
    process.wait_for('the node stays unconfigured', timeout=10)
    assert process.returncode is None, 'a configure failure must not end the process'
    assert process.interrupt() == 0


def test_undeclarable_parameter_exits_with_code_2(tracker_process):
    process = tracker_process('image_qos_depth:=0')  # outside the declared range
    process.wait_for('invalid parameters', timeout=30)
    assert process.wait(timeout=30) == 2
