"""YOLOv10 detections from Ultralytics, behind the small `Detector` interface.

Weights are a model name Ultralytics can download (`yolov10n.pt` ... `yolov10x.pt`, fetched
on first use) or a local `.pt` path. `untrained=True` builds the architecture from its YAML
(`yolov10n.yaml`) with random weights, for tests and benchmarks, and says so in the log.
Frames come in as RGB and are handed to Ultralytics as BGR, which it assumes for arrays.
"""

from __future__ import annotations

import logging
import os

import cv2
import numpy as np

from sam2_ros.core.tracking_types import Detection

logger = logging.getLogger(__name__)


def _coco_names() -> dict[int, str]:
    """Return the 80 COCO class names shipped with Ultralytics (those of yolov10*.pt)."""
    from pathlib import Path

    import ultralytics
    import yaml

    path = Path(ultralytics.__file__).parent / 'cfg' / 'datasets' / 'coco.yaml'
    return {int(k): str(v) for k, v in yaml.safe_load(path.read_text())['names'].items()}


class DetectorLoadError(RuntimeError):
    """A detector that cannot be built or loaded; the message says why and what to do."""


class YoloDetector:
    """A YOLOv10 (or any Ultralytics YOLO) detector returning `Detection`s."""

    def __init__(
        self,
        model: str = 'yolov10n.pt',
        confidence: float = 0.25,
        classes: list[str] | None = None,
        image_size: int = 640,
        device: str = 'auto',
        untrained: bool = False,
    ) -> None:
        """Load `model` (name or path); `classes` restricts detections to those names."""
        if not 0.0 <= confidence <= 1.0:
            raise DetectorLoadError(f'confidence must be in [0, 1], got {confidence}')
        if image_size < 32 or image_size % 32:
            raise DetectorLoadError(f'image_size must be a multiple of 32, got {image_size}')
        from sam2_ros.models.sam2_model import ModelLoadError, resolve_device

        try:
            device = str(resolve_device(device))  # the same rules as SAM 2's device
        except ModelLoadError as error:
            raise DetectorLoadError(str(error)) from None
        from ultralytics import YOLO

        if untrained:
            name = os.path.splitext(os.path.basename(model))[0] + '.yaml'
            logger.warning(
                'detector %s is built with UNTRAINED random weights: its detections are '
                'meaningless; use this only for tests and benchmarks',
                name,
            )
            source = name
        else:
            source = model
            if os.sep in model and not os.path.isfile(model):
                raise DetectorLoadError(f'detector weights not found: {model}')
        try:
            self._model = YOLO(source)
        except Exception as error:  # noqa: BLE001 - download, unpickling and config errors
            raise DetectorLoadError(
                f"could not load detector '{source}': {type(error).__name__}: "
                f'{str(error).strip().splitlines()[0] if str(error).strip() else ""} '
                '(offline? download the weights elsewhere and pass their path)'
            ) from error
        self.model_name = source
        self.untrained = untrained
        self.confidence = confidence
        self.image_size = image_size
        self.device = device
        # fp16 on CUDA; newer Ultralytics spells it quantize=16, older ones half=True.
        from ultralytics.cfg import DEFAULT_CFG_DICT

        self._precision_args = {}
        if device.startswith('cuda'):
            self._precision_args = (
                {'quantize': 16} if 'quantize' in DEFAULT_CFG_DICT else {'half': True}
            )
        if untrained:
            # A YAML-built model names its classes '0'..'79'; give it the COCO names the
            # released YOLOv10 weights use, so class filters and labels work the same way.
            self._model.model.names = _coco_names()
        names = self._model.names
        self._names: dict[int, str] = {int(k): str(v) for k, v in dict(names).items()}
        self._class_filter: list[int] | None = None
        if classes:
            by_name = {v: k for k, v in self._names.items()}
            unknown = [c for c in classes if c not in by_name]
            if unknown:
                raise DetectorLoadError(
                    f'unknown detector classes {unknown}; this model knows e.g. '
                    f'{", ".join(list(by_name)[:10])}, ...'
                )
            self._class_filter = sorted(by_name[c] for c in classes)

    @property
    def class_names(self) -> dict[int, str]:
        """Class names by class id."""
        return dict(self._names)

    def describe(self) -> str:
        """One line for logs and diagnostics."""
        weights = 'UNTRAINED (random) weights' if self.untrained else 'trained weights'
        return f'{self.model_name} on {self.device}, {weights}, confidence {self.confidence}'

    def detect(self, frame: np.ndarray) -> list[Detection]:
        """Detect objects on an HxWx3 uint8 RGB frame."""
        bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
        results = self._model.predict(
            bgr,
            imgsz=self.image_size,
            conf=self.confidence,
            classes=self._class_filter,
            device=self.device,
            verbose=False,
            **self._precision_args,
        )
        boxes = results[0].boxes
        xyxy = boxes.xyxy.cpu().numpy().astype(float)
        scores = boxes.conf.cpu().numpy().astype(float)
        class_ids = boxes.cls.cpu().numpy().astype(int)
        return [
            Detection(
                box=(float(b[0]), float(b[1]), float(b[2]), float(b[3])),
                score=float(s),
                class_id=int(c),
                class_name=self._names.get(int(c), str(int(c))),
            )
            for b, s, c in zip(xyxy, scores, class_ids, strict=True)
        ]
