"""The YOLOv10 wrapper on the real (untrained) YOLOv10-N architecture."""

import os
import subprocess
import sys

import numpy as np
import pytest

from sam2_ros.core.tracking_types import Detection
from sam2_ros.models.detector import DetectorLoadError, YoloDetector


@pytest.fixture(scope='module')
def detector():
    return YoloDetector('yolov10n.pt', confidence=0.0, device='cpu', untrained=True)


def test_untrained_yolov10n_runs_and_returns_detections(detector, caplog):
    assert detector.class_names[0] == 'person' and len(detector.class_names) == 80
    assert 'UNTRAINED' in detector.describe()
    frame = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    detections = detector.detect(frame)
    # confidence 0 keeps every box the untrained head emits, so the loop below runs
    assert detections
    for detection in detections:
        assert isinstance(detection, Detection)
        x0, y0, x1, y1 = detection.box
        assert 0 <= x0 <= x1 <= 640 and 0 <= y0 <= y1 <= 480
        assert detection.class_name == detector.class_names[detection.class_id]


def test_class_filter_and_bad_options():
    filtered = YoloDetector('yolov10n.pt', classes=['cup', 'person'], device='cpu', untrained=True)
    assert filtered._class_filter == [0, 41]
    with pytest.raises(DetectorLoadError, match=r"unknown detector classes \['unicorn'\]"):
        YoloDetector('yolov10n.pt', classes=['unicorn'], device='cpu', untrained=True)
    with pytest.raises(DetectorLoadError, match='confidence must be in'):
        YoloDetector(confidence=2.0, untrained=True)
    with pytest.raises(DetectorLoadError, match='multiple of 32'):
        YoloDetector(image_size=100, untrained=True)
    with pytest.raises(DetectorLoadError, match='weights not found'):
        YoloDetector('/nonexistent/dir/yolov10n.pt')


def test_offline_download_failure_is_a_clear_error(tmp_path):
    script = (
        'from sam2_ros.models.detector import DetectorLoadError, YoloDetector\n'
        'try:\n'
        "    YoloDetector('yolov10s.pt', device='cpu')\n"
        'except DetectorLoadError as error:\n'
        '    print(error)\n'
    )
    result = subprocess.run(
        [sys.executable, '-c', script],
        cwd=tmp_path,
        env={**os.environ, 'YOLO_OFFLINE': '1'},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "could not load detector 'yolov10s.pt'" in result.stdout
    assert 'pass their path' in result.stdout
