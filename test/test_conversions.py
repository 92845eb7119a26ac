"""Pipeline results into sam2_ros messages, label images and overlays."""

import math

from builtin_interfaces.msg import Time
import numpy as np
import pytest
from std_msgs.msg import Header

from sam2_ros.core.overlay import render_overlay
from sam2_ros.core.pipeline import FrameResult, TrackedObject
from sam2_ros.core.tracking_types import TrackState
from sam2_ros.msg import Mask
from sam2_ros.ros.conversions import (
    frame_result_to_msg,
    label_image_msg,
    mask_to_msg,
    msg_to_mask,
    object_color,
)

pytestmark = pytest.mark.ros


def _object(obj_id, x0, y0, size=10, state=TrackState.TRACKING, shape=(40, 60)):
    mask = np.zeros(shape, bool)
    mask[y0 : y0 + size, x0 : x0 + size] = True
    return TrackedObject(
        obj_id=obj_id,
        label=f'thing{obj_id}',
        class_id=41,
        class_name='cup',
        state=state,
        mask=mask,
        box=(x0, y0, x0 + size, y0 + size),
        centroid=(x0 + size / 2, y0 + size / 2),  # continuous pixels
        area=size * size,
        score=0.9,
        visibility=0.8,
        propagation_confidence=0.7,
        frames_since_keyframe=2,
        keyframe_stamp=3_000_000_004,  # header stamps cross into the core as ns
        reanchor_count=1,
    )


def _lost(obj_id, shape=(40, 60)):
    return TrackedObject(
        obj_id,
        '',
        -1,
        '',
        TrackState.LOST,
        np.zeros(shape, bool),
        None,
        None,
        0,
        0.1,
        0.0,
        0.0,
        7,
        None,
        0,
    )


def test_frame_result_message_keeps_the_header_and_every_field():
    result = FrameResult(
        frame_index=5,
        stamp=None,
        is_keyframe=True,
        keyframe_reasons=('interval', 'drift_suspected'),
        objects=[_object(1, 5, 5), _lost(2)],
        events=[],
        timings_ms={},
    )
    header = Header(stamp=Time(sec=100, nanosec=200), frame_id='camera_optical_frame')
    msg = frame_result_to_msg(result, header, (60, 40))
    assert msg.header == header
    assert (msg.image_width, msg.image_height) == (60, 40)
    assert msg.is_keyframe and list(msg.keyframe_reasons) == ['interval', 'drift_suspected']
    first, lost = msg.objects
    assert (first.id, first.label, first.class_id, first.class_name) == (1, 'thing1', 41, 'cup')
    assert first.state == TrackState.TRACKING == first.STATE_TRACKING
    assert (first.bbox.x_offset, first.bbox.y_offset, first.bbox.width, first.bbox.height) == (
        5,
        5,
        10,
        10,
    )
    assert first.centroid_x == pytest.approx(10.0) and first.area == 100
    assert first.score == pytest.approx(0.9) and first.propagation_confidence == pytest.approx(0.7)
    assert first.keyframe_stamp == Time(sec=3, nanosec=4)
    assert (first.frames_since_keyframe, first.reanchor_count) == (2, 1)
    np.testing.assert_array_equal(msg_to_mask(first.mask), result.objects[0].mask)
    assert lost.state == lost.STATE_LOST and lost.area == 0 and lost.bbox.width == 0
    assert math.isnan(lost.centroid_x) and not msg_to_mask(lost.mask).any()


def test_mask_message_round_trip_and_empty_message():
    mask = np.random.default_rng(0).random((7, 9)) > 0.5
    np.testing.assert_array_equal(msg_to_mask(mask_to_msg(mask)), mask)
    assert msg_to_mask(Mask()) is None


def test_label_image_encoding_and_overlap_order():
    header = Header(frame_id='cam')
    msg = label_image_msg([_object(3, 5, 5), _object(2, 10, 10)], (40, 60), header)
    assert msg.encoding == 'mono8' and msg.header.frame_id == 'cam' and msg.step == 60
    labels = np.frombuffer(bytes(msg.data), np.uint8).reshape(40, 60)
    assert labels[6, 6] == 3 and labels[12, 12] == 3  # the higher id is on top
    assert labels[18, 18] == 2 and labels[0, 0] == 0
    wide = label_image_msg([_object(300, 5, 5)], (40, 60), header)
    assert wide.encoding == '16UC1' and wide.step == 120
    assert np.frombuffer(bytes(wide.data), np.uint16).reshape(40, 60)[6, 6] == 300
    with pytest.raises(ValueError, match='16-bit'):
        label_image_msg([_object(70000, 5, 5)], (40, 60), header)


def test_overlay_colours_the_masks_only():
    frame = np.full((40, 60, 3), 100, np.uint8)
    result = FrameResult(0, None, True, ('interval',), [_object(1, 20, 10)], [], {})
    overlay = render_overlay(frame, result)
    assert overlay.shape == (40, 60, 3)
    assert not np.array_equal(overlay[15, 25], [100, 100, 100])  # inside the mask
    assert np.array_equal(overlay[35, 58], [100, 100, 100])  # far from everything
    assert object_color(1) != object_color(2) and object_color(7) == object_color(7)
