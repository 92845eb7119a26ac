"""Depth messages in (raw, compressedDepth, 16-bit PNG) and 3D messages out."""

from __future__ import annotations

import struct

from builtin_interfaces.msg import Time
import cv2
import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from sam2_ros.core.depth import Object3D, no_3d
from sam2_ros.core.pipeline import FrameResult, TrackedObject
from sam2_ros.core.tracking_types import TrackState
from sam2_ros.ros.conversions import frame_result_to_msg, labelled_cloud_msg, markers_msg
from sam2_ros.ros.image_conversion import (
    ImageConversionError,
    array_to_image_msg,
    compressed_depth_msg_to_array,
    depth_msg_to_array,
)

pytestmark = pytest.mark.ros

MM = np.array([[0, 500, 1000], [1500, 2000, 65535]], np.uint16)


def test_raw_16uc1_and_32fc1_in_either_byte_order():
    data, unit = depth_msg_to_array(array_to_image_msg(MM, '16UC1'))
    assert unit == 0.001 and data.dtype == np.uint16 and np.array_equal(data, MM)
    metres = MM.astype(np.float32) / 1000
    metres[0, 0] = np.nan
    data, unit = depth_msg_to_array(array_to_image_msg(metres, '32FC1'))
    assert unit == 1.0 and np.array_equal(data, metres, equal_nan=True)
    big = Image(height=2, width=3, encoding='16UC1', is_bigendian=1, step=8)
    rows = np.hstack([MM.astype('>u2').view(np.uint8), np.zeros((2, 2), np.uint8)])  # padded
    big.data = rows.tobytes()
    data, _ = depth_msg_to_array(big)
    assert np.array_equal(data, MM)


@pytest.mark.parametrize(
    ('change', 'reason'),
    [
        (dict(encoding='rgb8'), "unsupported depth encoding 'rgb8'"),
        (dict(width=0), 'image size must be positive'),
        (dict(step=4), 'step 4 is smaller than width*bytes = 6'),
        (dict(data=b'\x00' * 5), 'data has 5 bytes, expected step*height = 12'),
    ],
)
def test_malformed_raw_depth_is_rejected_with_the_reason(change, reason):
    msg = array_to_image_msg(MM, '16UC1')
    for key, value in change.items():
        setattr(msg, key, value)
    with pytest.raises(ImageConversionError, match=reason.replace('*', r'\*')):
        depth_msg_to_array(msg)


def _compressed_depth(fmt: str, png: np.ndarray, a: float = 0.0, b: float = 0.0):
    data = struct.pack('<iff', 0, a, b) + cv2.imencode('.png', png)[1].tobytes()
    return CompressedImage(format=fmt, data=data)


def test_compressed_depth_16uc1_and_32fc1_inverse_depth():
    data, unit = compressed_depth_msg_to_array(_compressed_depth('16UC1; compressedDepth png', MM))
    assert unit == 0.001 and np.array_equal(data, MM)
    # 32FC1 travels as quantised inverse depth: v = a / z + b, 0 for no depth.
    depth_z0, depth_max = 100.0, 10.0
    a = depth_z0 * (depth_z0 + 1.0)
    b = 1.0 - a / depth_max
    z = np.array([[0.5, 1.0, 2.0], [3.0, 5.0, np.nan]], np.float32)
    v = np.where(np.isfinite(z), a / np.nan_to_num(z, nan=1.0) + b, 0).astype(np.uint16)
    data, unit = compressed_depth_msg_to_array(
        _compressed_depth('32FC1; compressedDepth', v, a, b)
    )
    assert unit == 1.0 and np.isnan(data[1, 2])
    np.testing.assert_allclose(data[np.isfinite(z)], z[np.isfinite(z)], rtol=0.01)
    png = CompressedImage(format='16UC1; png', data=cv2.imencode('.png', MM)[1].tobytes())
    assert np.array_equal(compressed_depth_msg_to_array(png)[0], MM)


@pytest.mark.parametrize(
    ('msg', 'reason'),
    [
        (CompressedImage(format='jpeg', data=b'1'), 'does not start with a depth encoding'),
        (CompressedImage(format='16UC1; compressedDepth rvl', data=b'1'), 'RVL is not supported'),
        (CompressedImage(format='16UC1; compressedDepth', data=b'123'), 'no data after its'),
        (CompressedImage(format='16UC1; jpeg', data=b'1'), 'only png is lossless'),
        (CompressedImage(format='16UC1; png', data=b'not a png'), 'could not decode'),
    ],
)
def test_bad_compressed_depth_is_rejected_with_the_reason(msg, reason):
    with pytest.raises(ImageConversionError, match=reason):
        compressed_depth_msg_to_array(msg)


def _object(obj_id: int) -> TrackedObject:
    mask = np.zeros((20, 30), bool)
    mask[5:10, 5:10] = True
    return TrackedObject(
        obj_id=obj_id,
        label='cup',
        class_id=41,
        class_name='cup',
        state=TrackState.PROPAGATED,
        mask=mask,
        box=(5, 5, 10, 10),
        centroid=(7.0, 7.0),
        area=25,
        score=0.9,
        visibility=0.9,
        propagation_confidence=0.8,
        frames_since_keyframe=1,
        keyframe_stamp=None,
        reanchor_count=0,
    )


def _with_3d(points: int) -> Object3D:
    xyz = np.column_stack([np.linspace(0, 0.1, points), np.zeros(points), np.ones(points)])
    return Object3D(
        (0.05, 0.0, 1.0),
        (0.05, 0.0, 1.0),
        (0.1, 0.02, 0.01),
        points,
        0.9,
        '',
        xyz.astype(np.float32),
    )


def _header() -> Header:
    return Header(stamp=Time(sec=7, nanosec=5), frame_id='camera_color_optical_frame')


def test_3d_fields_markers_and_cloud_carry_the_colour_header():
    objects = [_object(1), _object(2)]
    result = FrameResult(
        frame_index=0,
        stamp=None,
        is_keyframe=False,
        keyframe_reasons=('propagated',),
        objects=objects,
        events=[],
        timings_ms={},
    )
    objects_3d = {1: _with_3d(10), 2: no_3d('too little depth: 3 of 25 mask pixels', 3, 0.12)}
    msg = frame_result_to_msg(result, _header(), (30, 20), objects_3d)
    first, second = msg.objects
    assert first.has_3d and first.position.z == 1.0 and first.box_size.x == pytest.approx(0.1)
    assert first.depth_points == 10 and first.depth_coverage == pytest.approx(0.9)
    assert not second.has_3d and second.depth_reason.startswith('too little depth')
    assert second.depth_points == 3 and second.position.z == 0.0

    markers = markers_msg(objects, objects_3d, _header())
    assert len(markers.markers) == 3  # DELETEALL, then box and text of object 1 only
    for marker in markers.markers:
        assert marker.header == _header()
    box, text = markers.markers[1:]
    assert box.scale.x == pytest.approx(0.1) and box.color.a == pytest.approx(0.45)
    assert text.text == '1 cup 1.00 m'

    cloud = labelled_cloud_msg(objects_3d, _header(), max_points=4)
    assert cloud.header == _header() and cloud.point_step == 16
    points = np.frombuffer(
        bytes(cloud.data), dtype=[('x', '<f4'), ('y', '<f4'), ('z', '<f4'), ('label', '<u4')]
    )
    assert cloud.width == len(points) == 4 and set(points['label']) == {1}
    assert labelled_cloud_msg({}, _header()).width == 0
