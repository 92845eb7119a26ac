"""Project a 3D point in the camera's optical frame to image pixels through CameraInfo.

RViz's "Publish Point" tool publishes a geometry_msgs/PointStamped in the fixed frame. When
that frame is the camera's optical frame (z forward, x right, y down), the point projects
through the intrinsics and the lens distortion of sensor_msgs/CameraInfo onto the raw image.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from sam2_ros.core.prompts import PromptError

PINHOLE_MODELS = ('plumb_bob', 'rational_polynomial', '')
FISHEYE_MODELS = ('equidistant',)


def project_to_pixel(x: float, y: float, z: float, camera_info) -> tuple[float, float]:
    """Return the (u, v) pixel of an optical-frame point on the raw image of `camera_info`.

    Raises PromptError for a non-finite point, a point behind the camera, an uncalibrated
    camera (K all zeros) or an unsupported distortion model.
    """
    values = (x, y, z)
    if not all(math.isfinite(v) for v in values):
        raise PromptError(f'clicked point ({x}, {y}, {z}) is not finite')
    if z <= 0.0:
        raise PromptError(
            f'clicked point ({x:.3f}, {y:.3f}, {z:.3f}) is behind the camera (z <= 0 in the '
            'optical frame)'
        )
    k = np.asarray(camera_info.k, dtype=np.float64).reshape(3, 3)
    if k[0, 0] <= 0.0 or k[1, 1] <= 0.0:
        raise PromptError('camera_info has no calibration (K has zero focal lengths)')
    model = camera_info.distortion_model
    d = np.asarray(camera_info.d, dtype=np.float64)
    point = np.array([[[x, y, z]]], dtype=np.float64)
    zero = np.zeros(3)
    if model in FISHEYE_MODELS:
        coefficients = np.zeros(4)
        coefficients[: min(4, len(d))] = d[:4]
        pixels, _ = cv2.fisheye.projectPoints(point, zero, zero, k, coefficients)
    elif model in PINHOLE_MODELS:
        pixels, _ = cv2.projectPoints(point, zero, zero, k, d if len(d) else None)
    else:
        raise PromptError(
            f"camera_info distortion model '{model}' is not supported; supported: "
            'plumb_bob, rational_polynomial, equidistant'
        )
    u, v = (float(c) for c in pixels.reshape(2))
    return u, v
