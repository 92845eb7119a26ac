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
# Distortion vector lengths cv2.projectPoints accepts (k1 k2 p1 p2 [k3 [k4 k5 k6 [s1..s4
# [tau_x tau_y]]]]); 0 means no distortion.
PINHOLE_D_LENGTHS = (0, 4, 5, 8, 12, 14)
FISHEYE_D_LENGTHS = (0, 4)


def project_to_pixel(x: float, y: float, z: float, camera_info) -> tuple[float, float]:
    """Return the (u, v) pixel of an optical-frame point on the raw image of `camera_info`.

    Raises PromptError for a non-finite point, a point behind the camera, an uncalibrated
    camera (K all zeros or not finite), an unsupported distortion model or a distortion
    vector of a length that model cannot have.
    """
    values = (x, y, z)
    if not all(math.isfinite(v) for v in values):
        raise PromptError(f'clicked point ({x}, {y}, {z}) is not finite')
    if z <= 0.0:
        raise PromptError(
            f'clicked point ({x:.3f}, {y:.3f}, {z:.3f}) is behind the camera (z <= 0 in the '
            'optical frame)'
        )
    k, d = _calibration(camera_info)
    point = np.array([[[x, y, z]]], dtype=np.float64)
    zero = np.zeros(3)
    if camera_info.distortion_model in FISHEYE_MODELS:
        coefficients = d if len(d) else np.zeros(4)
        pixels, _ = cv2.fisheye.projectPoints(point, zero, zero, k, coefficients)
    else:
        pixels, _ = cv2.projectPoints(point, zero, zero, k, d if len(d) else None)
    u, v = (float(c) for c in pixels.reshape(2))
    if not (math.isfinite(u) and math.isfinite(v)):
        raise PromptError(f'clicked point ({x}, {y}, {z}) projects to no finite pixel')
    return u, v


def check_camera_info(camera_info) -> None:
    """Raise PromptError naming what makes `camera_info` unusable for projecting clicks."""
    _calibration(camera_info)


def _calibration(camera_info) -> tuple[np.ndarray, np.ndarray]:
    """Return (K as 3x3, D) of `camera_info`, or raise PromptError saying what is wrong."""
    k = np.asarray(camera_info.k, dtype=np.float64)
    if k.size != 9 or not np.isfinite(k).all():
        raise PromptError(f'camera_info K must be 9 finite numbers, got {list(k)}')
    k = k.reshape(3, 3)
    if k[0, 0] <= 0.0 or k[1, 1] <= 0.0:
        raise PromptError('camera_info has no calibration (K has zero focal lengths)')
    model = camera_info.distortion_model
    d = np.asarray(camera_info.d, dtype=np.float64).ravel()
    if model in FISHEYE_MODELS:
        lengths = FISHEYE_D_LENGTHS
    elif model in PINHOLE_MODELS:
        lengths = PINHOLE_D_LENGTHS
    else:
        raise PromptError(
            f"camera_info distortion model '{model}' is not supported; supported: "
            'plumb_bob, rational_polynomial, equidistant'
        )
    if len(d) not in lengths:
        raise PromptError(
            f"camera_info has {len(d)} distortion coefficients for model '{model}'; "
            f'it needs {", ".join(map(str, lengths))}'
        )
    if not np.isfinite(d).all():
        raise PromptError(f'camera_info distortion coefficients are not finite: {list(d)}')
    return k, d
