"""The generated messages and services round-trip through real DDS."""

import os
import sys
import textwrap

from builtin_interfaces.msg import Time
import numpy as np
from polling import spin_until
import pytest
from rclpy.qos import QoSProfile, ReliabilityPolicy

from sam2_ros.core.rle import decode_rle, encode_rle
from sam2_ros.msg import Mask, PromptPoint, TrackedObject, TrackedObjectArray
from sam2_ros.srv import AddPrompt, RemoveObject, ResetTracking

pytestmark = pytest.mark.ros


def _mask_msg(mask: np.ndarray) -> Mask:
    rle = encode_rle(mask)
    return Mask(height=rle.height, width=rle.width, counts=rle.counts.tolist())


def _sample_array() -> TrackedObjectArray:
    rng = np.random.default_rng(3)
    mask = rng.random((48, 64)) < 0.3
    obj = TrackedObject(
        id=7,
        label='red mug',
        class_id=41,
        class_name='cup',
        state=TrackedObject.STATE_REANCHORED,
        score=0.875,
        visibility=0.5,
        propagation_confidence=1.0,
        centroid_x=12.25,
        centroid_y=30.5,
        area=int(mask.sum()),
        mask=_mask_msg(mask),
        frames_since_keyframe=3,
        keyframe_stamp=Time(sec=5, nanosec=6),
        reanchor_count=2,
    )
    obj.bbox.x_offset, obj.bbox.y_offset, obj.bbox.width, obj.bbox.height = 1, 2, 30, 40
    msg = TrackedObjectArray(
        image_height=48, image_width=64, is_keyframe=True, keyframe_reasons=['interval']
    )
    msg.header.stamp = Time(sec=1234, nanosec=567890)
    msg.header.frame_id = 'camera_color_optical_frame'
    msg.objects = [obj, TrackedObject(id=8, state=TrackedObject.STATE_LOST)]
    return msg


def test_tracked_object_array_between_two_participants(ros_context, make_node):
    import rclpy
    import rclpy.context

    # A second context is a second DDS participant: the message is serialised and sent.
    other = rclpy.context.Context()
    rclpy.init(context=other)
    try:
        pub_node, pub_executor = make_node('array_publisher', context=other)
        sub_node, sub_executor = make_node('array_subscriber')
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        publisher = pub_node.create_publisher(TrackedObjectArray, 'objects', qos)
        received = []
        sub_node.create_subscription(TrackedObjectArray, 'objects', received.append, qos)
        assert spin_until(sub_executor, lambda: publisher.get_subscription_count() > 0)
        sent = _sample_array()
        publisher.publish(sent)
        assert spin_until(sub_executor, lambda: received)
    finally:
        rclpy.try_shutdown(context=other)

    got = received[0]
    assert got == sent
    first = got.objects[0]
    assert first.state == TrackedObject.STATE_REANCHORED and first.label == 'red mug'
    decoded = decode_rle(first.mask.height, first.mask.width, first.mask.counts)
    assert decoded.sum() == first.area


def test_constants_are_distinct():
    states = [
        TrackedObject.STATE_TRACKING,
        TrackedObject.STATE_PROPAGATED,
        TrackedObject.STATE_REANCHORED,
        TrackedObject.STATE_LOST,
    ]
    assert len(set(states)) == 4
    assert {PromptPoint.FOREGROUND, PromptPoint.BACKGROUND} == {0, 1}
    assert AddPrompt.Request.NEW_OBJECT == 0


# A service server in a separate process, so requests and responses cross process borders.
_SERVER = textwrap.dedent(
    """
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from sam2_ros.msg import Mask
    from sam2_ros.ros.shutdown import init_rclpy, shutdown_rclpy, spin_until_stopped
    from sam2_ros.srv import AddPrompt, RemoveObject, ResetTracking

    def add(request, response):
        response.success = True
        response.object_id = request.object_id or 42
        response.message = (f'{request.label}|{len(request.points)}|{list(request.box)}|'
                            f'{request.frame_stamp.sec}|{request.canvas_width}')
        response.score = float(request.points[0].x) if request.points else 0.0
        response.mask = request.mask
        response.candidates = [request.mask, Mask(height=1, width=1, counts=[0, 1])]
        response.candidate_scores = [0.25, 0.75]
        return response

    def remove(request, response):
        response.success = request.object_id == 42
        response.message = 'removed' if response.success else f'unknown id {request.object_id}'
        return response

    def reset(request, response):
        response.success, response.message, response.removed_count = True, 'reset', 3
        return response

    # The package's own shutdown path, as its nodes' main() run it: rclpy.spin with rclpy's
    # signal handlers sometimes hung on SIGINT on Jazzy (the test killed it after 15 s).
    stop = init_rclpy()
    node = rclpy.create_node('prompt_server')
    node.create_service(AddPrompt, 'add_prompt', add)
    node.create_service(RemoveObject, 'remove_object', remove)
    node.create_service(ResetTracking, 'reset_tracking', reset)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    print('server ready', flush=True)
    try:
        spin_until_stopped(executor, stop)
    finally:
        executor.shutdown(timeout_sec=1.0)
        node.destroy_node()
        shutdown_rclpy(stop)
    """
)


def _call(executor, client, request):
    assert client.wait_for_service(timeout_sec=15.0), f'{client.srv_name} never appeared'
    future = client.call_async(request)
    assert spin_until(executor, future.done, timeout=15.0)
    return future.result()


@pytest.mark.timeout(60)
def test_services_round_trip_across_processes(make_node):
    from sam2_ros.ros.node_process import NodeProcess

    server = NodeProcess([sys.executable, '-c', _SERVER], env=os.environ)
    try:
        server.wait_for('server ready', timeout=30)
        node, executor = make_node('prompt_client')
        add = node.create_client(AddPrompt, 'add_prompt')
        mask = np.zeros((4, 5), dtype=bool)
        mask[1:3, 2:4] = True
        request = AddPrompt.Request(
            label='box',
            points=[
                PromptPoint(x=3.5, y=2.0, label=PromptPoint.FOREGROUND),
                PromptPoint(x=1.0, y=1.0, label=PromptPoint.BACKGROUND),
            ],
            box=[1.0, 2.0, 3.0, 4.0],
            mask=_mask_msg(mask),
            frame_stamp=Time(sec=99, nanosec=1),
            canvas_width=320,
            canvas_height=240,
        )
        response = _call(executor, add, request)
        assert response.success and response.object_id == 42
        assert response.message == 'box|2|[1.0, 2.0, 3.0, 4.0]|99|320'
        assert response.score == pytest.approx(3.5)
        np.testing.assert_array_equal(
            decode_rle(response.mask.height, response.mask.width, response.mask.counts), mask
        )
        assert len(response.candidates) == 2
        assert list(response.candidate_scores) == pytest.approx([0.25, 0.75])

        remove = node.create_client(RemoveObject, 'remove_object')
        assert _call(executor, remove, RemoveObject.Request(object_id=42)).success
        failed = _call(executor, remove, RemoveObject.Request(object_id=5))
        assert not failed.success and failed.message == 'unknown id 5'

        reset = node.create_client(ResetTracking, 'reset_tracking')
        assert _call(executor, reset, ResetTracking.Request()).removed_count == 3
    finally:
        assert server.interrupt() == 0
