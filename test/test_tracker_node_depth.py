"""The sam2_tracker node with an aligned depth image: 3D fields, markers, cloud, diagnostics.

Untrained SAM 2 masks are meaningless, so the 3D a message carries is checked against the
core estimate recomputed from the mask in that same message and the depth image sent: the
node must pair, check and convert exactly as the core does, whatever the mask.
"""

from __future__ import annotations

import re

from diagnostic_msgs.msg import DiagnosticArray
from node_harness import TrackerHarness
import numpy as np
from polling import wait_for
import pytest
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from tracker_fixtures import moving_frames
from visualization_msgs.msg import Marker, MarkerArray

from sam2_ros.core.depth import Depth3DConfig, Intrinsics, object_3d
from sam2_ros.msg import PromptPoint, TrackedObject
from sam2_ros.ros.conversions import msg_to_mask
from sam2_ros.ros.image_conversion import array_to_image_msg
from sam2_ros.srv import AddPrompt, ResetTracking

pytestmark = [pytest.mark.ros, pytest.mark.timeout(240)]

FRAMES = moving_frames(20)  # 160x120; the square's top-left is (20 + 2i, 30 + i) on frame i
WIDTH, HEIGHT = 160, 120
K = [100.0, 0.0, 79.5, 0.0, 100.0, 59.5, 0.0, 0.0, 1.0]
QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
DEPTH_FIELDS = (
    'has_3d',
    'position',
    'box_center',
    'box_size',
    'depth_points',
    'depth_coverage',
    'depth_reason',
)


def depth_mm(i: int) -> np.ndarray:
    """16UC1 depth of frame i: the square at 1 m on a background at 2 m."""
    depth = np.full((HEIGHT, WIDTH), 2000, np.uint16)
    x, y = 20 + (2 * i) % 100, 30 + i % 60
    depth[y : y + 30, x : x + 30] = 1000
    return depth


def camera_info(k=K, width=WIDTH, height=HEIGHT) -> CameraInfo:
    info = CameraInfo(width=width, height=height, distortion_model='plumb_bob', k=k)
    info.d = [0.0] * 5
    info.header.frame_id = 'camera'
    return info


class DepthFeed:
    """Publishers of camera_info, depth/camera_info and depth next to the harness's image."""

    def __init__(self, harness: TrackerHarness, topic: str = 'depth', msg_type=Image) -> None:
        self.harness = harness
        client = harness.client
        self.info = client.create_publisher(CameraInfo, 'camera_info', QOS)
        self.depth_info = client.create_publisher(CameraInfo, 'depth/camera_info', QOS)
        self.depth = client.create_publisher(msg_type, topic, QOS)
        assert wait_for(
            lambda: all(
                p.get_subscription_count() for p in (self.info, self.depth_info, self.depth)
            )
        )

    def infos(self, colour=None, depth=None) -> None:
        """Publish both camera_infos; wait until the node holds the depth one."""
        self.info.publish(colour or camera_info())
        depth = depth or camera_info()
        self.depth_info.publish(depth)
        expected = Intrinsics.from_k(depth.k, depth.width, depth.height)
        node = self.harness.node
        assert wait_for(
            lambda: node._camera_info is not None and node._depth_intrinsics == expected
        )

    def feed(self, indices, first_sec: int, offset_ns: int = 0, encode=None) -> list:
        """Publish depth, then the image, per frame; return the tracked_objects messages."""
        outputs = []
        node = self.harness.node
        for n, i in enumerate(indices):
            sec = first_sec + n
            msg = (encode or self.raw)(depth_mm(i))
            msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(sec * 10**9 + offset_ns, 10**9)
            msg.header.frame_id = 'camera'
            self.depth.publish(msg)
            stamp = sec * 10**9 + offset_ns
            assert wait_for(lambda s=stamp: node._depth.nearest_offset_ns(s) == 0)
            self.harness.publish(FRAMES[i], sec)
            outputs.append(self.harness.output_for(sec))
        return outputs

    @staticmethod
    def raw(depth: np.ndarray) -> Image:
        return array_to_image_msg(depth, '16UC1')


def add_square(harness, i: int):
    request = AddPrompt.Request()
    request.points = [PromptPoint(x=35.0 + 2 * i, y=45.0 + i, label=1)]
    response = harness.call(AddPrompt, 'add_prompt', request)
    assert response.success, response.message
    return response.object_id


def expected_3d(obj: TrackedObject, i: int):
    """Return the core's answer for the message's own mask and the depth of frame i."""
    camera = Intrinsics.from_k(K, WIDTH, HEIGHT)
    return object_3d(msg_to_mask(obj.mask), depth_mm(i), 0.001, camera, Depth3DConfig())


def assert_matches_core(obj: TrackedObject, i: int) -> None:
    expected = expected_3d(obj, i)
    assert obj.has_3d == expected.has_3d
    assert obj.depth_points == expected.valid_points
    assert obj.depth_coverage == pytest.approx(expected.coverage, abs=1e-6)
    assert obj.depth_reason == expected.reason
    if expected.has_3d:
        got = (obj.position.x, obj.position.y, obj.position.z)
        assert got == pytest.approx(expected.centre, abs=1e-5)
        size = (obj.box_size.x, obj.box_size.y, obj.box_size.z)
        assert size == pytest.approx(expected.box_size, abs=1e-5)
        assert 1.0 <= obj.position.z <= 2.0  # on the square (1 m) or the background (2 m)


def latest(harness, received):
    assert wait_for(lambda: harness.diagnostics(received) is not None, 10)
    return harness.diagnostics(received)


@pytest.fixture(scope='module')
def depth_tracker():
    harness = TrackerHarness(keyframe_interval=3, use_depth=True)
    harness.wait_connected()
    yield harness
    harness.close()


@pytest.fixture
def fresh(depth_tracker):
    response = depth_tracker.call(ResetTracking, 'reset_tracking', ResetTracking.Request())
    assert response.success, response.message
    return depth_tracker


def test_paired_depth_gives_3d_markers_and_a_labelled_cloud_with_the_colour_header(fresh):
    feed = DepthFeed(fresh)
    feed.infos()
    markers = fresh.subscribe(MarkerArray, 'object_markers')
    clouds = fresh.subscribe(PointCloud2, 'object_cloud')
    assert wait_for(lambda: fresh.node._outputs['cloud'].get_subscription_count() > 0)
    feed.feed([0], 100)
    obj_id = add_square(fresh, 0)
    outputs = feed.feed(range(1, 7), 101)
    for i, msg in enumerate(outputs, start=1):
        [obj] = msg.objects
        assert obj.id == obj_id
        assert_matches_core(obj, i)
    assert any(m.objects[0].has_3d for m in outputs), 'no frame had 3D'

    assert wait_for(lambda: any(m.markers[0].header.stamp.sec == 106 for m in markers))
    marker_msg = next(m for m in markers if m.markers[0].header.stamp.sec == 106)
    assert marker_msg.markers[0].action == Marker.DELETEALL
    for marker in marker_msg.markers:
        assert marker.header.frame_id == 'camera' and marker.header.stamp.sec == 106
    last = outputs[-1].objects[0]
    if last.has_3d:
        box, text = marker_msg.markers[1:]
        assert (box.type, box.id, text.type) == (Marker.CUBE, obj_id, Marker.TEXT_VIEW_FACING)
        assert box.pose.position.z == pytest.approx(last.box_center.z)
        assert text.text.startswith(f'{obj_id} ')

    assert wait_for(lambda: any(c.header.stamp.sec == 106 for c in clouds))
    cloud = next(c for c in clouds if c.header.stamp.sec == 106)
    assert cloud.header.frame_id == 'camera'
    assert [f.name for f in cloud.fields] == ['x', 'y', 'z', 'label']
    points = np.frombuffer(
        bytes(cloud.data),
        dtype=[('x', '<f4'), ('y', '<f4'), ('z', '<f4'), ('label', '<u4')],
    )
    assert len(points) == cloud.width == (last.depth_points if last.has_3d else 0)
    assert set(points['label'].tolist()) <= {obj_id}


def test_depth_outside_the_stamp_window_gives_no_3d_and_is_counted(fresh):
    feed = DepthFeed(fresh)
    feed.infos()
    diagnostics = fresh.subscribe(DiagnosticArray, '/diagnostics')
    feed.feed([0], 200)
    add_square(fresh, 0)
    before = int(latest(fresh, diagnostics)['depth_frames_unpaired'])
    outputs = feed.feed(range(1, 4), 201, offset_ns=50_000_000)  # 50 ms > 20 ms window
    for msg in outputs:
        [obj] = msg.objects
        assert not obj.has_3d and obj.position.z == 0.0
        assert obj.depth_reason == 'no depth image within 0.02 s of this frame'
    assert wait_for(lambda: int(latest(fresh, diagnostics)['depth_frames_unpaired']) == before + 3)
    # The same depth is paired once the window is wide enough (a live parameter).
    from rclpy.parameter import Parameter

    result = fresh.node.set_parameters([Parameter('depth_max_offset_sec', value=0.1)])[0]
    assert result.successful, result.reason
    try:
        [msg] = feed.feed([4], 204, offset_ns=50_000_000)
        assert 'no depth image' not in msg.objects[0].depth_reason
    finally:
        fresh.node.set_parameters([Parameter('depth_max_offset_sec', value=0.02)])


def test_mismatched_depth_is_refused_with_the_reason_once_and_on_diagnostics(fresh):
    feed = DepthFeed(fresh)
    diagnostics = fresh.subscribe(DiagnosticArray, '/diagnostics')
    wrong = list(K)
    wrong[0] = 110.0  # fx 10 % off: not aligned to the colour camera
    feed.infos(depth=camera_info(k=wrong))
    feed.feed([0], 300)
    add_square(fresh, 0)
    outputs = feed.feed(range(1, 3), 301)
    for msg in outputs:
        obj = msg.objects[0]
        assert not obj.has_3d
        assert obj.depth_reason.startswith('depth refused: depth fx = 110.00 px differs')
    assert wait_for(lambda: int(latest(fresh, diagnostics)['depth_frames_refused']) >= 3)
    status = latest(fresh, diagnostics)
    assert status['level'] == b'\x01' and 'depth refused: depth fx' in status['message']
    assert 'not aligned' in status['depth_problem']

    feed.infos()  # the right intrinsics: the refusal is over
    [msg] = feed.feed([3], 303)
    assert_matches_core(msg.objects[0], 3)
    assert wait_for(lambda: latest(fresh, diagnostics)['depth_problem'] == 'none')


def test_readme_depth_topic_table_matches_the_depth_node(depth_tracker):
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / 'README.md').read_text()
    section = readme.split('### Depth topics', 1)[1].split('\n#', 1)[0]
    rows = set(re.findall(r'^\| `([^`]+)` \|', section, flags=re.MULTILINE))
    node = depth_tracker.node
    prefix = depth_tracker.namespace + '/'
    names = {e.topic_name.removeprefix(prefix) for e in [*node._inputs, *node._outputs.values()]}
    plain = {'image', 'camera_info', 'image_mouse_left', '/clicked_point'}
    plain |= {'tracked_objects', 'label_image', 'overlay'}
    # The other depth transports subscribe to <depth>/compressedDepth or <depth>/compressed.
    assert rows == (names - plain) | {'depth/compressedDepth', 'depth/compressed'}


def test_without_use_depth_nothing_about_depth_exists_and_messages_are_unchanged():
    harness = TrackerHarness()
    try:
        harness.wait_connected()
        node = harness.node
        prefix = harness.namespace + '/'
        names = {e.topic_name.removeprefix(prefix) for e in [*node._inputs]}
        assert not {n for n in names if n.startswith('depth')}
        assert set(node._outputs) == {'objects', 'labels', 'overlay'}
        depth_pub = harness.client.create_publisher(Image, 'depth', QOS)
        [before] = harness.feed(FRAMES[:1], 400)
        add_square(harness, 1)
        depth_pub.publish(DepthFeed.raw(depth_mm(1)))
        outputs = harness.feed(FRAMES[1:4], 401)
        assert depth_pub.get_subscription_count() == 0
        assert harness.client.count_publishers(f'{harness.namespace}/object_markers') == 0
        default = TrackedObject()
        for msg in outputs:
            [obj] = msg.objects
            for name in DEPTH_FIELDS:  # every 3D field as a message without depth has it
                assert getattr(obj, name) == getattr(default, name), name
    finally:
        harness.close()


def compressed_depth(depth: np.ndarray) -> CompressedImage:
    import struct

    import cv2

    header = struct.pack('<iff', 0, 0.0, 0.0)  # INV_DEPTH format; unused for 16UC1
    png = cv2.imencode('.png', depth)[1].tobytes()
    return CompressedImage(format='16UC1; compressedDepth png', data=header + png)


def test_compressed_depth_transport():
    harness = TrackerHarness(use_depth=True, depth_transport='compressedDepth')
    try:
        harness.wait_connected()
        feed = DepthFeed(harness, 'depth/compressedDepth', CompressedImage)
        # Without either camera_info nothing can be checked: refused, with the reason.
        feed.feed([0], 490, encode=compressed_depth)
        add_square(harness, 0)
        [msg] = feed.feed([1], 491, encode=compressed_depth)
        assert msg.objects[0].depth_reason.startswith(
            'depth refused: no camera_info received yet on '
        )
        feed.info.publish(camera_info())
        assert wait_for(lambda: harness.node._camera_info is not None)
        [msg] = feed.feed([2], 492, encode=compressed_depth)
        assert msg.objects[0].depth_reason == (
            'depth refused: no depth camera_info received yet: its intrinsics are needed'
        )
        feed.infos()
        feed.feed([0], 500, encode=compressed_depth)
        add_square(harness, 0)
        outputs = feed.feed(range(1, 3), 501, encode=compressed_depth)
        for i, msg in enumerate(outputs, start=1):
            assert 'no depth image' not in msg.objects[0].depth_reason
            assert_matches_core(msg.objects[0], i)
    finally:
        harness.close()
