"""RViz clicks in the optical frame -> pixels through CameraInfo."""

import cv2
import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo

from sam2_ros.core.camera_projection import check_camera_info, project_to_pixel
from sam2_ros.core.prompts import PromptError

pytestmark = pytest.mark.ros


def camera_info(model='plumb_bob', d=(0.0,) * 5):
    info = CameraInfo(width=640, height=480, distortion_model=model)
    info.k = [500.0, 0.0, 320.0, 0.0, 510.0, 240.0, 0.0, 0.0, 1.0]
    info.d = list(d)
    return info


def test_pinhole_projection():
    assert project_to_pixel(0.0, 0.0, 2.0, camera_info()) == pytest.approx((320.0, 240.0))
    assert project_to_pixel(0.2, -0.1, 1.0, camera_info()) == pytest.approx((420.0, 189.0))


def test_plumb_bob_and_equidistant_distortion_match_opencv():
    d = (-0.2, 0.05, 0.001, -0.002, 0.0)
    u, v = project_to_pixel(0.3, 0.2, 1.0, camera_info('plumb_bob', d))
    k = np.array(camera_info().k).reshape(3, 3)
    expected, _ = cv2.projectPoints(
        np.array([[0.3, 0.2, 1.0]]), np.zeros(3), np.zeros(3), k, np.array(d)
    )
    assert (u, v) == pytest.approx(tuple(expected.ravel()))
    assert (u, v) != pytest.approx((470.0, 342.0))  # the distortion is applied
    fisheye = project_to_pixel(0.3, 0.2, 1.0, camera_info('equidistant', (0.1, 0.0, 0.0, 0.0)))
    assert fisheye != pytest.approx((470.0, 342.0))


@pytest.mark.parametrize(
    ('point', 'info', 'message'),
    [
        ((0.0, 0.0, -1.0), camera_info(), 'behind the camera'),
        ((float('nan'), 0.0, 1.0), camera_info(), 'not finite'),
        ((0.0, 0.0, 1.0), CameraInfo(), 'no calibration'),
        ((0.0, 0.0, 1.0), camera_info('kannala'), "distortion model 'kannala' is not supported"),
    ],
)
def test_unusable_clicks_are_rejected_with_the_reason(point, info, message):
    with pytest.raises(PromptError, match=message):
        project_to_pixel(*point, info)


@pytest.mark.parametrize('length', [1, 2, 3, 6, 7, 9, 13, 15])
def test_distortion_vectors_opencv_cannot_use_are_rejected_with_their_length(length):
    info = camera_info('plumb_bob', (0.01,) * length)
    with pytest.raises(PromptError, match=f'has {length} distortion coefficients'):
        project_to_pixel(0.0, 0.0, 1.0, info)
    with pytest.raises(PromptError, match=f'has {length} distortion coefficients'):
        check_camera_info(info)


@pytest.mark.parametrize('length', [0, 4, 5, 8, 12, 14])
def test_every_distortion_length_opencv_accepts_projects(length):
    u, v = project_to_pixel(0.0, 0.0, 1.0, camera_info('rational_polynomial', (0.0,) * length))
    assert (u, v) == pytest.approx((320.0, 240.0))


def test_non_finite_calibration_is_rejected():
    info = camera_info()
    info.k = [float('nan')] + list(info.k[1:])
    with pytest.raises(PromptError, match='K must be 9 finite numbers'):
        project_to_pixel(0.0, 0.0, 1.0, info)
    with pytest.raises(PromptError, match='not finite'):
        project_to_pixel(0.0, 0.0, 1.0, camera_info(d=(float('inf'),) * 5))
    with pytest.raises(PromptError, match="has 5 distortion coefficients for model 'equidistant'"):
        project_to_pixel(0.0, 0.0, 1.0, camera_info('equidistant'))
