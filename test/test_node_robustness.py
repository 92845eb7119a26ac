"""Inputs that used to stop the node, a guard around every callback, and many callers at once.

Each test talks to a real in-process node (untrained SAM 2.1 tiny at 256 px) and checks that
it answers with the reason, keeps running and keeps tracking what it tracked before.
"""

from __future__ import annotations

import threading
import time

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PointStamped
from node_harness import TrackerHarness
from polling import wait_for
import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from tracker_fixtures import moving_frames

from sam2_ros.msg import Mask, TrackedObjectArray
from sam2_ros.ros.image_conversion import array_to_image_msg
from sam2_ros.srv import AddPrompt, ResetTracking

pytestmark = [pytest.mark.ros, pytest.mark.timeout(240)]

FRAMES = moving_frames(40)
BOX = [20.0, 30.0, 50.0, 60.0]  # the square on frame 0


@pytest.fixture(scope='module')
def tracker():
    harness = TrackerHarness()
    harness.wait_connected()
    yield harness
    harness.close()


@pytest.fixture
def fresh(tracker):
    response = tracker.call(ResetTracking, 'reset_tracking', ResetTracking.Request())
    assert response.success, response.message
    return tracker


def diagnostics_value(harness, received: list, key: str) -> str | None:
    status = harness.diagnostics(received)
    return None if status is None else status.get(key)


def test_a_mask_claiming_a_terabyte_is_refused_before_decoding(fresh):
    fresh.feed(FRAMES[:1], first_sec=100)
    side = 1 << 20
    counts = [1 << 31] * 512  # they even cover the 2^40 pixels
    request = AddPrompt.Request(mask=Mask(height=side, width=side, counts=counts))
    response = fresh.call(AddPrompt, 'add_prompt', request)
    assert not response.success
    assert f'mask claims {side}x{side}' in response.message
    assert 'more than the maximum of 16777216' in response.message
    assert fresh.call(AddPrompt, 'add_prompt', AddPrompt.Request(box=BOX)).success
    assert [o.id for o in fresh.feed(FRAMES[1:2], first_sec=101)[0].objects] == [1]


def test_an_rviz_click_after_a_bad_camera_info_is_refused_and_the_node_lives(fresh):
    fresh.feed(FRAMES[:1], first_sec=200)
    info_pub = fresh.client.create_publisher(CameraInfo, 'camera_info', 10)
    rviz = fresh.client.create_publisher(PointStamped, '/clicked_point', 10)
    assert wait_for(lambda: info_pub.get_subscription_count() and rviz.get_subscription_count())
    info = CameraInfo(width=160, height=120, distortion_model='plumb_bob')
    info.header.frame_id = 'camera'
    info.k = [100.0, 0.0, 80.0, 0.0, 100.0, 60.0, 0.0, 0.0, 1.0]
    info.d = [0.1, 0.0, 0.0]  # OpenCV raised on three coefficients
    info_pub.publish(info)
    assert wait_for(lambda: fresh.node._camera_info is not None)
    click = PointStamped()
    click.header.frame_id = 'camera'
    click.point.z = 1.0
    rviz.publish(click)
    outputs = fresh.feed(FRAMES[1:4], first_sec=201)
    assert all(not m.objects for m in outputs), 'the click was used'
    fresh.node._camera_info = None


def test_an_exception_in_a_callback_is_counted_and_the_node_keeps_tracking(fresh):
    diagnostics = fresh.subscribe(DiagnosticArray, '/diagnostics')
    fresh.feed(FRAMES[:1], first_sec=300)
    assert fresh.call(AddPrompt, 'add_prompt', AddPrompt.Request(box=BOX)).success
    assert wait_for(lambda: diagnostics_value(fresh, diagnostics, 'callback_errors') is not None)
    before = int(diagnostics_value(fresh, diagnostics, 'callback_errors'))
    frames = fresh.node._frames
    real_put = frames.put

    def broken_put(*args):
        frames.put = real_put  # fail once, as an unforeseen bug would
        raise RuntimeError('unforeseen')

    frames.put = broken_put
    fresh.publish(FRAMES[1], 301)
    assert wait_for(lambda: frames.put is real_put)
    outputs = fresh.feed(FRAMES[2:4], first_sec=302)
    assert all([o.id for o in m.objects] == [1] for m in outputs)
    assert wait_for(
        lambda: int(diagnostics_value(fresh, diagnostics, 'callback_errors')) == before + 1
    )
    last = diagnostics_value(fresh, diagnostics, 'last_callback_error')
    assert last == 'on_image: RuntimeError: unforeseen'


def test_many_concurrent_prompts_while_images_stream_all_answer(tracker):
    """Eight callers at once used to leave the executor resubmitting work and time out."""
    tracker.call(ResetTracking, 'reset_tracking', ResetTracking.Request())
    callers = rclpy.create_node(
        'concurrent_callers', namespace=tracker.namespace, context=tracker.context
    )
    executor = SingleThreadedExecutor(context=tracker.context)
    executor.add_node(callers)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    answered: list[int] = []
    callers.create_subscription(
        TrackedObjectArray, 'tracked_objects', lambda m: answered.append(m.header.stamp.sec), 10
    )
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    images = callers.create_publisher(Image, 'image', qos)
    stop = threading.Event()

    def stream() -> None:
        for i in range(10_000):
            if stop.is_set():
                return
            msg = array_to_image_msg(FRAMES[i % len(FRAMES)], 'rgb8')
            msg.header.stamp = Time(sec=1000 + i)
            images.publish(msg)
            time.sleep(0.05)

    streamer = threading.Thread(target=stream, daemon=True)
    try:
        client = callers.create_client(AddPrompt, f'{tracker.namespace}/sam2_tracker/add_prompt')
        assert client.wait_for_service(timeout_sec=10.0)
        streamer.start()
        assert wait_for(lambda: len(answered) >= 3)
        futures = [client.call_async(AddPrompt.Request(box=BOX)) for _ in range(8)]
        assert wait_for(lambda: all(f.done() for f in futures), 30.0), 'calls unanswered'
        messages = [f.result().message for f in futures]
        assert all(f.result().success for f in futures), messages
        assert sorted(f.result().object_id for f in futures) == list(range(1, 9))
        during = len(answered)
        assert wait_for(lambda: len(answered) >= during + 5, 20.0), 'the frame path starved'
    finally:
        stop.set()
        streamer.join(timeout=5) if streamer.is_alive() else None
        executor.shutdown(timeout_sec=2.0)
        callers.destroy_node()


def test_a_compressed_image_claiming_40000_squared_pixels_is_dropped_unopened():
    harness = TrackerHarness(image_transport='compressed')
    try:
        diagnostics = harness.subscribe(DiagnosticArray, '/diagnostics')
        pub = harness.client.create_publisher(
            CompressedImage,
            'image/compressed',
            QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE),
        )
        assert wait_for(lambda: pub.get_subscription_count() > 0)
        ihdr = (40000).to_bytes(4, 'big') * 2 + bytes([8, 2, 0, 0, 0])
        bomb = CompressedImage(format='png', data=b'\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR' + ihdr)
        bomb.header.stamp.sec = 5
        pub.publish(bomb)
        assert wait_for(
            lambda: diagnostics_value(harness, diagnostics, 'images_invalid') == '1'
        ), 'the image was not dropped and counted'
        assert diagnostics_value(harness, diagnostics, 'callback_errors') == '0'
        assert harness._thread.is_alive()
    finally:
        harness.close()


@pytest.mark.parametrize('service', ['set_parameters', 'set_parameters_atomically'])
@pytest.mark.parametrize(
    ('name', 'value', 'reason'),
    [
        (
            'keyframe_intervall',
            5,
            "unknown parameter 'keyframe_intervall': the node declares "
            "no such parameter; did you mean 'keyframe_interval'?",
        ),
        (
            'zzz',
            True,
            "unknown parameter 'zzz': the node declares no such parameter "
            '(`ros2 param list` shows them)',
        ),
        (
            'keyframe_interval',
            'often',
            "parameter 'keyframe_interval' must be an integer, got a string ('often')",
        ),
        (
            'drift_iou_threshold',
            1,
            "parameter 'drift_iou_threshold' must be a floating-point "
            'number (write 1.0, not 1), got an integer (1)',
        ),
    ],
)
def test_unknown_names_and_wrong_types_are_refused_with_name_and_type(
    tracker, service, name, value, reason
):
    from rcl_interfaces.srv import SetParameters, SetParametersAtomically
    from rclpy.parameter import Parameter

    message = Parameter(name, value=value).to_parameter_msg()
    if service == 'set_parameters':
        response = tracker.call(
            SetParameters, service, SetParameters.Request(parameters=[message])
        )
        result = response.results[0]
    else:
        request = SetParametersAtomically.Request(parameters=[message])
        result = tracker.call(SetParametersAtomically, service, request).result
    assert not result.successful
    assert result.reason == reason
    if tracker.node.has_parameter(name):
        assert tracker.node.get_parameter(name).type_ != Parameter(name, value=value).type_
