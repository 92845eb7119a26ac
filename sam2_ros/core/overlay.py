"""The overlay image: masks, contours, ids, labels and states drawn over a frame."""

from __future__ import annotations

import cv2
import numpy as np

from sam2_ros.core.palette import object_color
from sam2_ros.core.pipeline import FrameResult


def render_overlay(frame_rgb: np.ndarray, result: FrameResult, alpha: float = 0.45) -> np.ndarray:
    """Draw masks, contours, ids, labels and states over a frame; returns BGR for bgr8."""
    canvas = cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR)
    for obj in result.objects:
        if obj.box is None:
            continue
        color = object_color(obj.obj_id)
        x0, y0, x1, y1 = obj.box
        roi = canvas[y0:y1, x0:x1]
        inside = obj.mask[y0:y1, x0:x1]
        tinted = cv2.addWeighted(roi, 1.0 - alpha, np.full_like(roi, color), alpha, 0.0)
        np.copyto(roi, tinted, where=inside[..., None])
        contours, _ = cv2.findContours(
            inside.view(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE, offset=(x0, y0)
        )
        cv2.drawContours(canvas, contours, -1, color, 2)
        text = f'{obj.obj_id} {obj.label or obj.class_name} {obj.state.name}'.strip()
        org = (x0, max(12, y0 - 4))
        cv2.putText(canvas, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(canvas, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.45, color, 1, cv2.LINE_AA)
    status = 'keyframe: ' + ', '.join(result.keyframe_reasons) if result.is_keyframe else ''
    if status:
        cv2.putText(
            canvas,
            status,
            (6, canvas.shape[0] - 8),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.45,
            (255, 255, 255),
            1,
            cv2.LINE_AA,
        )
    return canvas
