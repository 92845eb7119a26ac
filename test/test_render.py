"""sam2_render's drawing of LOST objects: the last box seen, dashed, marked LOST."""

from __future__ import annotations

import numpy as np
import pytest

from sam2_ros.core.overlay import render_overlay
from sam2_ros.msg import TrackedObject, TrackedObjectArray
from sam2_ros.ros.conversions import mask_to_msg, msg_to_frame_result
from sam2_ros.tools.render import _draw_lost

pytestmark = pytest.mark.ros


def _frame(state: int, box=None) -> TrackedObjectArray:
    msg = TrackedObjectArray(image_height=60, image_width=80)
    obj = TrackedObject(id=3, state=state, label='cup')
    mask = np.zeros((60, 80), bool)
    if box is not None:
        x0, y0, x1, y1 = box
        mask[y0:y1, x0:x1] = True
        obj.bbox.x_offset, obj.bbox.y_offset = x0, y0
        obj.bbox.width, obj.bbox.height = x1 - x0, y1 - y0
    obj.mask = mask_to_msg(mask)
    msg.objects = [obj]
    return msg


def test_a_lost_object_is_drawn_as_its_last_box_dashed():
    rgb = np.full((60, 80, 3), 128, np.uint8)
    boxes: dict = {}
    seen = msg_to_frame_result(_frame(TrackedObject.STATE_TRACKING, (10, 10, 50, 40)))
    _draw_lost(render_overlay(rgb, seen), seen, boxes)
    lost = msg_to_frame_result(_frame(TrackedObject.STATE_LOST))
    plain = render_overlay(rgb, lost)
    assert (plain == 128).all(), 'the node overlay draws nothing for a LOST object'
    canvas = plain.copy()
    _draw_lost(canvas, lost, boxes)
    bottom_edge = np.abs(canvas[40, 10:50].astype(int) - 128).max(axis=1) > 60
    assert 0.3 < bottom_edge.mean() < 0.8, 'the bottom edge is not dashed'
    assert (canvas[20:30, 20:40] == 128).all(), 'the inside of the box was painted'
    assert (canvas[:9, 10:50] != 128).any(), 'no LOST text above the box'


def test_an_object_never_seen_is_not_drawn_when_lost():
    rgb = np.full((60, 80, 3), 128, np.uint8)
    lost = msg_to_frame_result(_frame(TrackedObject.STATE_LOST))
    canvas = render_overlay(rgb, lost)
    _draw_lost(canvas, lost, {})
    assert (canvas == 128).all()
