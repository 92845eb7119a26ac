"""The sam2_tracker node end to end: real rclpy, untrained SAM 2.1 tiny (256 px), YOLOv10-N.

Untrained weights make masks meaningless, so these tests check what the node promises
regardless of mask quality: headers, ids, states, prompts, timing of answers, drops.
"""

from __future__ import annotations

import re
import threading
import time

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Point, PointStamped
from node_harness import TrackerHarness
import numpy as np
from polling import wait_for
import pytest
from sensor_msgs.msg import CameraInfo, Image
from tracker_fixtures import moving_frames

from sam2_ros.msg import PromptPoint, TrackedObject
from sam2_ros.ros.conversions import msg_to_mask
from sam2_ros.ros.image_conversion import array_to_image_msg
from sam2_ros.srv import AddPrompt, RemoveObject, ResetTracking

pytestmark = [pytest.mark.ros, pytest.mark.timeout(240)]

ADD, REMOVE, RESET = 'add_prompt', 'remove_object', 'reset_tracking'
FRAMES = moving_frames(40)  # 160x120; the square's top-left is (20 + 2i, 30 + i) on frame i
STATES = {
    TrackedObject.STATE_TRACKING,
    TrackedObject.STATE_PROPAGATED,
    TrackedObject.STATE_REANCHORED,
    TrackedObject.STATE_LOST,
}


def square_centre(i: int) -> tuple[float, float]:
    return 35.0 + 2 * i, 45.0 + i


def add(tracker, points=(), box=(), label='', stamp_sec=0, canvas=(0, 0), object_id=0):
    request = AddPrompt.Request(object_id=object_id, label=label, box=list(box))
    request.points = [PromptPoint(x=float(x), y=float(y), label=lab) for x, y, lab in points]
    request.frame_stamp.sec = stamp_sec
    request.canvas_width, request.canvas_height = canvas
    return tracker.call(AddPrompt, ADD, request)


def latest_diagnostics(harness, received: list) -> dict:
    assert wait_for(lambda: harness.diagnostics(received), 10)
    return harness.diagnostics(received)


@pytest.fixture(scope='module')
def tracker():
    harness = TrackerHarness(keyframe_interval=3)
    harness.wait_connected()
    yield harness
    harness.close()


@pytest.fixture
def fresh(tracker):
    response = tracker.call(ResetTracking, RESET, ResetTracking.Request())
    assert response.success, response.message
    return tracker


def test_prompt_service_tracks_an_object_with_source_headers(fresh):
    labels = fresh.subscribe(Image, 'label_image')
    before = fresh.feed(FRAMES[:3], first_sec=100)
    assert [m.header.stamp.sec for m in before] == [100, 101, 102]
    assert all(m.header.frame_id == 'camera' and not m.objects for m in before)
    assert (before[0].image_width, before[0].image_height) == (160, 120)

    response = add(fresh, points=[(*square_centre(2), 1)], label='patch')
    assert response.success, response.message
    obj_id = response.object_id
    assert obj_id > 0 and f'added object {obj_id} (patch)' in response.message
    assert msg_to_mask(response.mask).shape == (120, 160)
    assert len(response.candidates) == len(response.candidate_scores) == 3
    assert all(0.0 <= s <= 1.0 for s in response.candidate_scores)

    after = fresh.feed(FRAMES[3:9], first_sec=103)
    for sec, msg in zip(range(103, 109), after, strict=True):
        assert msg.header.stamp.sec == sec and msg.header.frame_id == 'camera'
        assert [o.id for o in msg.objects] == [obj_id]
        obj = msg.objects[0]
        assert obj.label == 'patch' and obj.state in STATES
        assert msg_to_mask(obj.mask).shape == (120, 160)
        if msg.is_keyframe:
            assert obj.frames_since_keyframe == 0 and obj.keyframe_stamp == msg.header.stamp
    assert any(m.is_keyframe for m in after) and not all(m.is_keyframe for m in after)
    assert wait_for(lambda: any(m.header.stamp.sec == 108 for m in labels))
    label_msg = next(m for m in labels if m.header.stamp.sec == 108)
    assert label_msg.encoding == 'mono8' and label_msg.header.frame_id == 'camera'
    values = set(np.frombuffer(bytes(label_msg.data), dtype=np.uint8).tolist())
    assert values <= {0, obj_id}


def test_objects_added_mid_stream_removed_and_reset(fresh):
    fresh.feed(FRAMES[:2], first_sec=200)
    first = add(fresh, points=[(*square_centre(1), 1)])
    fresh.feed(FRAMES[2:4], first_sec=202)
    second = add(fresh, box=(100, 10, 140, 40), label='corner')
    assert first.success and second.success, (first.message, second.message)
    ids = sorted([first.object_id, second.object_id])
    outputs = fresh.feed(FRAMES[4:6], first_sec=204)
    assert all(sorted(o.id for o in m.objects) == ids for m in outputs)

    removed = fresh.call(RemoveObject, REMOVE, RemoveObject.Request(object_id=first.object_id))
    assert removed.success, removed.message
    [after_remove] = fresh.feed(FRAMES[6:7], first_sec=206)
    assert [o.id for o in after_remove.objects] == [second.object_id]
    again = fresh.call(RemoveObject, REMOVE, RemoveObject.Request(object_id=first.object_id))
    assert not again.success and f'unknown object id {first.object_id}' in again.message

    reset = fresh.call(ResetTracking, RESET, ResetTracking.Request())
    assert reset.success and reset.removed_count == 1
    [after_reset] = fresh.feed(FRAMES[7:8], first_sec=207)
    assert not after_reset.objects


def test_prompt_stamped_on_an_earlier_frame_is_carried_to_the_present(fresh):
    fresh.feed(FRAMES[:10], first_sec=300)
    x, y = square_centre(2)
    response = add(fresh, points=[(x, y, 1)], stamp_sec=302)
    assert response.success, response.message
    match = re.search(r'prompted (\d+) frames ago, carried ([\d.]+) px', response.message)
    assert match, response.message
    assert int(match.group(1)) == 7
    # The square moved (+2, +1) px per frame: 7 frames = 15.65 px.
    assert abs(float(match.group(2)) - np.hypot(14, 7)) < 2.0

    missing = add(fresh, points=[(x, y, 1)], stamp_sec=5)
    assert not missing.success
    assert 'no buffered frame has stamp 5.000000000' in missing.message
    assert re.search(r'the last \d+ frames span stamps', missing.message)


def test_canvas_coordinates_are_scaled_to_the_image(fresh):
    fresh.feed(FRAMES[:1], first_sec=400)
    x, y = square_centre(0)
    direct = add(fresh, points=[(x, y, 1)])
    scaled = add(fresh, points=[(2 * x, 2 * y, 1)], canvas=(320, 240))
    assert direct.success and scaled.success, (direct.message, scaled.message)
    assert np.array_equal(msg_to_mask(direct.mask), msg_to_mask(scaled.mask))
    half = add(fresh, points=[(x, y, 1)], canvas=(320, 0))
    assert not half.success and 'give both or neither' in half.message


@pytest.mark.parametrize(
    ('points', 'box', 'expected'),
    [
        ([(float('nan'), 10.0, 1)], (), 'points[0, 0] is nan'),
        ([(10.0, float('inf'), 1)], (), 'points[0, 1] is inf'),
        ([(500.0, 10.0, 1)], (), 'point 0 (500, 10) lies outside the 160x120 image'),
        ([(10.0, 10.0, 7)], (), 'label 0 is 7'),
        ([], (50, 50, 10, 10), 'is empty or inverted'),
        ([], (1, 2, 3), 'box must have 4 values'),
        ([], (), 'empty prompt'),
    ],
)
def test_bad_prompts_are_rejected_with_the_reason_and_change_nothing(fresh, points, box, expected):
    fresh.feed(FRAMES[:1], first_sec=500)
    kept = add(fresh, points=[(*square_centre(0), 1)])
    response = add(fresh, points=points, box=box)
    assert not response.success and expected in response.message, response.message
    refine = add(fresh, points=[(10.0, 10.0, 1)], object_id=999)
    assert not refine.success and 'unknown object id 999' in refine.message
    [after] = fresh.feed(FRAMES[1:2], first_sec=501)
    assert [o.id for o in after.objects] == [kept.object_id]


def feed_until(tracker, predicate, first_sec: int, limit: int = 10):
    """Feed frames until an output satisfies `predicate`; return it."""
    for i in range(limit):
        [msg] = tracker.feed([FRAMES[i]], first_sec + i)
        if predicate(msg):
            return msg
    raise AssertionError(f'no output satisfied the condition within {limit} frames')


def test_rqt_and_rviz_clicks_create_objects(fresh):
    fresh.feed(FRAMES[:1], first_sec=600)
    rqt = fresh.client.create_publisher(Point, 'image_mouse_left', 10)
    rviz = fresh.client.create_publisher(PointStamped, '/clicked_point', 10)
    info_pub = fresh.client.create_publisher(CameraInfo, 'camera_info', 10)
    assert wait_for(
        lambda: (
            rqt.get_subscription_count()
            and rviz.get_subscription_count()
            and info_pub.get_subscription_count()
        )
    )
    rqt.publish(Point(x=35.0, y=45.0))
    feed_until(fresh, lambda m: len(m.objects) == 1, first_sec=610)

    info = CameraInfo(width=160, height=120, distortion_model='plumb_bob')
    info.header.frame_id = 'camera'
    info.k = [100.0, 0.0, 80.0, 0.0, 100.0, 60.0, 0.0, 0.0, 1.0]
    info.d = [0.0] * 5
    info_pub.publish(info)
    assert wait_for(lambda: fresh.node._camera_info is not None)
    wrong = PointStamped()
    wrong.header.frame_id = 'map'
    wrong.point.z = 1.0
    rviz.publish(wrong)  # not in the camera frame: ignored with a warning
    right = PointStamped()
    right.header.frame_id = 'camera'
    right.point.x, right.point.y, right.point.z = 0.2, 0.1, 1.0  # -> pixel (100, 70)
    rviz.publish(right)
    feed_until(fresh, lambda m: len(m.objects) == 2, first_sec=620)
    outputs = fresh.feed(FRAMES[:3], first_sec=630)
    assert all(len(m.objects) == 2 for m in outputs), 'the click in frame map was used'


def _malformed_images() -> list[Image]:
    good = array_to_image_msg(FRAMES[0], 'rgb8')
    wrong_encoding = array_to_image_msg(FRAMES[0], 'rgb8')
    wrong_encoding.encoding = 'yuv422'
    zero = array_to_image_msg(FRAMES[0], 'rgb8')
    zero.width = 0
    short_step = array_to_image_msg(FRAMES[0], 'rgb8')
    short_step.step = 100
    truncated = array_to_image_msg(FRAMES[0], 'rgb8')
    truncated.data = bytes(good.data)[:1000]
    huge = array_to_image_msg(np.zeros((400, 400, 3), np.uint8), 'rgb8')  # > max_image_pixels
    return [wrong_encoding, zero, short_step, truncated, huge]


def test_malformed_images_are_dropped_counted_and_tracking_goes_on(fresh):
    diagnostics = fresh.subscribe(DiagnosticArray, '/diagnostics')
    assert fresh.node.set_parameters_atomically(
        [rclpy_parameter('max_image_pixels', 160 * 120)]
    ).successful
    try:
        fresh.feed(FRAMES[:1], first_sec=700)
        kept = add(fresh, points=[(*square_centre(0), 1)])
        invalid_before = int(latest_diagnostics(fresh, diagnostics)['images_invalid'])
        for i, msg in enumerate(_malformed_images()):
            msg.header.stamp.sec = 710 + i
            fresh.image_pub.publish(msg)
        outputs = fresh.feed(FRAMES[1:3], first_sec=701)
        assert all([o.id for o in m.objects] == [kept.object_id] for m in outputs)
        assert wait_for(
            lambda: (
                int(latest_diagnostics(fresh, diagnostics)['images_invalid']) == invalid_before + 5
            )
        )
        assert not [m for m in fresh.outputs if 710 <= m.header.stamp.sec < 720]
    finally:
        fresh.node.set_parameters([rclpy_parameter('max_image_pixels', 16777216)])


def rclpy_parameter(name, value):
    from rclpy.parameter import Parameter

    return Parameter(name, value=value)


def test_diagnostics_report_rates_latency_model_and_untrained_weights(fresh):
    diagnostics = fresh.subscribe(DiagnosticArray, '/diagnostics')
    fresh.feed(FRAMES[:1], first_sec=800)
    add(fresh, points=[(*square_centre(0), 1)])
    fresh.feed(FRAMES[1:6], first_sec=801)
    status = latest_diagnostics(fresh, diagnostics)
    assert status['level'] == b'\x01'  # WARN: untrained weights
    assert 'UNTRAINED' in status['message'] and status['untrained_weights'] == 'true'
    assert 'SAM 2.1 tiny' in status['sam2'] and status['device'] == 'cpu'
    assert status['lifecycle_state'] == 'active' and status['objects'] == '1'
    for key in ('input_rate_hz', 'output_rate_hz', 'latency_p50_ms', 'latency_p95_ms'):
        assert float(status[key]) > 0.0, key
    assert float(status['latency_p95_ms']) >= float(status['latency_p50_ms'])
    for key in ('frames_dropped', 'images_invalid', 'reanchors', 'lost_objects'):
        assert int(status[key]) >= 0
    assert 0.0 < float(status['keyframe_ratio']) <= 1.0


@pytest.mark.parametrize(
    ('name', 'value', 'reason'),
    [
        ('keyframe_interval', 0, 'out of range'),
        ('drift_iou_threshold', float('nan'), 'drift_iou_threshold'),
        ('drift_iou_threshold', 1.5, 'out of range'),
        ('click_mode', 'sometimes', 'click_mode must be one of new_object, refine_selected'),
        ('auto_track_classes', 'person,unicorn', "auto_track_classes ['unicorn'] are not classes"),
        ('sam2_model', 'large', 'can change only while the node is unconfigured'),
        ('autostart', False, 'read-only'),
    ],
)
def test_invalid_parameter_updates_are_rejected_with_a_reason(tracker, name, value, reason):
    before = tracker.node.get_parameter(name).value
    result = tracker.node.set_parameters([rclpy_parameter(name, value)])[0]
    assert not result.successful and reason in result.reason, result.reason
    assert tracker.node.get_parameter(name).value == before


def test_live_parameter_updates_apply_without_restart(fresh):
    fresh.feed(FRAMES[:1], first_sec=900)
    add(fresh, points=[(*square_centre(0), 1)])
    result = fresh.node.set_parameters([rclpy_parameter('keyframe_interval', 1)])[0]
    assert result.successful, result.reason
    try:
        outputs = fresh.feed(FRAMES[1:4], first_sec=901)
        assert all(m.is_keyframe for m in outputs)
        accepted = fresh.node.set_parameters([rclpy_parameter('auto_track_classes', 'person')])
        assert accepted[0].successful, accepted[0].reason
        assert wait_for(lambda: fresh.node._pipeline.config.auto_track_classes == ('person',))
    finally:
        fresh.node.set_parameters(
            [rclpy_parameter('keyframe_interval', 3), rclpy_parameter('auto_track_classes', '')]
        )


def _change_state(harness, transition_id: int):
    from lifecycle_msgs.srv import ChangeState

    request = ChangeState.Request()
    request.transition.id = transition_id
    return harness.call(ChangeState, 'change_state', request).success


def _state(harness) -> str:
    from lifecycle_msgs.srv import GetState

    return harness.call(GetState, 'get_state', GetState.Request()).current_state.label


def test_lifecycle_configure_failure_then_recovery(tmp_path):
    from lifecycle_msgs.msg import Transition

    missing = str(tmp_path / 'missing' / 'sam2.1_hiera_tiny.pt')
    harness = TrackerHarness(autostart=False, untrained_models=False, sam2_checkpoint=missing)
    try:
        diagnostics = harness.subscribe(DiagnosticArray, '/diagnostics')
        assert _state(harness) == 'unconfigured'
        assert not _change_state(harness, Transition.TRANSITION_CONFIGURE)
        assert _state(harness) == 'unconfigured'
        assert wait_for(
            lambda: 'configure failed' in latest_diagnostics(harness, diagnostics)['message']
        )
        status = latest_diagnostics(harness, diagnostics)
        assert missing in status['message'] and status['level'] == b'\x02'
        refused = add(harness, points=[(10, 10, 1)])
        assert not refused.success and 'the node is unconfigured' in refused.message

        fixed = harness.node.set_parameters(
            [rclpy_parameter('sam2_checkpoint', ''), rclpy_parameter('untrained_models', True)]
        )
        assert all(r.successful for r in fixed)
        assert _change_state(harness, Transition.TRANSITION_CONFIGURE)
        assert _state(harness) == 'inactive'
        assert _change_state(harness, Transition.TRANSITION_ACTIVATE)
        assert _state(harness) == 'active'
        harness.wait_connected()
        harness.feed(FRAMES[:1], first_sec=1000)

        assert _change_state(harness, Transition.TRANSITION_DEACTIVATE)
        harness.publish(FRAMES[1], 1001)
        time.sleep(0.5)
        assert not [m for m in harness.outputs if m.header.stamp.sec == 1001]
        assert _change_state(harness, Transition.TRANSITION_CLEANUP)
        assert _state(harness) == 'unconfigured' and harness.node._pipeline is None
    finally:
        harness.close()


def test_services_answer_while_a_long_inference_runs():
    harness = TrackerHarness(service_timeout_sec=0.5)
    try:
        harness.wait_connected()
        diagnostics = harness.subscribe(DiagnosticArray, '/diagnostics')
        pipeline = harness.node._pipeline
        real_process, inside = pipeline.process, threading.Event()

        def slow_process(frame, stamp):  # a SAM 2 step that takes 3 s
            inside.set()
            time.sleep(3.0)
            return real_process(frame, stamp)

        pipeline.process = slow_process
        harness.publish(FRAMES[0], 1100)
        assert inside.wait(10)
        start, during = time.monotonic(), len(diagnostics)
        response = harness.call(RemoveObject, REMOVE, RemoveObject.Request(object_id=1))
        waited = time.monotonic() - start
        assert not response.success and 'timed out after 0.5 s' in response.message
        assert 'nothing was changed' in response.message
        assert waited < 2.5, f'the service took {waited:.1f} s'
        assert wait_for(lambda: len(diagnostics) > during, 2.0), 'diagnostics stalled'

        harness.output_for(1100)
        pipeline.process = real_process
        reset = harness.call(ResetTracking, RESET, ResetTracking.Request())
        assert reset.success, reset.message
    finally:
        harness.close()


def test_compressed_input_jpeg_and_png():
    import cv2
    from sensor_msgs.msg import CompressedImage

    harness = TrackerHarness(image_transport='compressed')
    try:
        diagnostics = harness.subscribe(DiagnosticArray, '/diagnostics')
        from rclpy.qos import QoSProfile, ReliabilityPolicy

        publisher = harness.client.create_publisher(
            CompressedImage,
            'image/compressed',
            QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE),
        )
        assert wait_for(lambda: publisher.get_subscription_count() > 0)
        bgr = np.ascontiguousarray(FRAMES[0][:, :, ::-1])
        for sec, (fmt, ext) in enumerate([('jpeg', '.jpg'), ('png', '.png')], start=1200):
            msg = CompressedImage(format=fmt, data=cv2.imencode(ext, bgr)[1].tobytes())
            msg.header.stamp.sec = sec
            publisher.publish(msg)
            output = harness.output_for(sec)
            assert (output.image_width, output.image_height) == (160, 120)
        corrupt = CompressedImage(format='jpeg', data=b'\xff\xd8 not a jpeg')
        corrupt.header.stamp.sec = 1210
        publisher.publish(corrupt)
        assert wait_for(lambda: latest_diagnostics(harness, diagnostics)['images_invalid'] == '1')
    finally:
        harness.close()


def _readme_names(heading: str) -> set[str]:
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / 'README.md').read_text()
    section = readme.split(heading, 1)[1].split('\n#', 1)[0]
    return set(re.findall(r'^\| `([^`]+)` \|', section, flags=re.MULTILINE))


def test_readme_topic_and_service_tables_match_the_node(tracker):
    from rclpy.lifecycle import LifecycleNode

    node = tracker.node
    prefix = tracker.namespace + '/'
    entities = [*node._inputs, *node._outputs.values(), node._diagnostics_pub]
    topics = {e.topic_name.removeprefix(prefix) for e in entities}
    topics.add('image/compressed')  # the image subscription with image_transport: compressed
    assert _readme_names('### Topics') == topics

    plain = LifecycleNode('plain_lifecycle_node', context=tracker.context)
    builtin = {s.srv_name.rsplit('/', 1)[1] for s in plain.services}
    plain.destroy_node()
    own = {s.srv_name.rsplit('/', 1)[1] for s in node.services} - builtin
    assert _readme_names('### Services') == {f'~/{name}' for name in own}
