"""sensor_msgs/Image and CompressedImage <-> numpy, without cv_bridge.

Every incoming image is validated before its buffer is touched: a malformed message raises
ImageConversionError naming the problem, never an IndexError deep inside numpy.
"""

from __future__ import annotations

import cv2
import numpy as np

# encoding -> (channels, numpy dtype, OpenCV conversion to RGB or None)
_INPUT_ENCODINGS: dict[str, tuple[int, type, int | None]] = {
    'rgb8': (3, np.uint8, None),
    'bgr8': (3, np.uint8, cv2.COLOR_BGR2RGB),
    'rgba8': (4, np.uint8, cv2.COLOR_RGBA2RGB),
    'bgra8': (4, np.uint8, cv2.COLOR_BGRA2RGB),
    'mono8': (1, np.uint8, cv2.COLOR_GRAY2RGB),
}

# encoding -> (channels, numpy dtype) for images this package publishes
_OUTPUT_ENCODINGS: dict[str, tuple[int, type]] = {
    'rgb8': (3, np.uint8),
    'bgr8': (3, np.uint8),
    'mono8': (1, np.uint8),
    'mono16': (1, np.uint16),
    '16UC1': (1, np.uint16),
}

SUPPORTED_INPUT_ENCODINGS = tuple(_INPUT_ENCODINGS)
DEFAULT_MAX_PIXELS = 4096 * 4096
RELIABILITIES = ('best_effort', 'reliable')  # the image_qos_reliability parameter's choices


def image_qos(reliability: str, depth: int):
    """Return the QoS of an image subscription: keep-last `depth`, best-effort or reliable."""
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

    if reliability not in RELIABILITIES:
        raise ValueError(f'reliability must be one of {", ".join(RELIABILITIES)}: {reliability}')
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=depth,
        reliability=ReliabilityPolicy.RELIABLE
        if reliability == 'reliable'
        else ReliabilityPolicy.BEST_EFFORT,
    )


class ImageConversionError(ValueError):
    """An image message that cannot be turned into a frame; the message says why."""


def image_msg_to_rgb(msg, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Return a contiguous HxWx3 uint8 RGB copy of a sensor_msgs/Image."""
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    encoding = msg.encoding
    if encoding not in _INPUT_ENCODINGS:
        raise ImageConversionError(
            f"unsupported encoding '{encoding}'; supported: {', '.join(_INPUT_ENCODINGS)}"
        )
    channels, dtype, conversion = _INPUT_ENCODINGS[encoding]
    if height <= 0 or width <= 0:
        raise ImageConversionError(f'image size must be positive, got {width}x{height}')
    if height * width > max_pixels:
        raise ImageConversionError(
            f'image has {height * width} pixels ({width}x{height}), more than the '
            f'maximum of {max_pixels}'
        )
    row_bytes = width * channels * np.dtype(dtype).itemsize
    if step < row_bytes:
        raise ImageConversionError(
            f'step {step} is smaller than width*channels*bytes = {row_bytes} for {encoding}'
        )
    needed = step * height
    data = msg.data
    if len(data) < needed:
        raise ImageConversionError(f'data has {len(data)} bytes, expected step*height = {needed}')
    buffer = np.frombuffer(data, dtype=np.uint8, count=needed)
    rows = buffer.reshape(height, step)[:, :row_bytes]
    pixels = rows.reshape(height, width, channels) if channels > 1 else rows
    if conversion is None:
        return np.ascontiguousarray(pixels)
    return cv2.cvtColor(np.ascontiguousarray(pixels), conversion)


def compressed_msg_to_rgb(msg, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode a sensor_msgs/CompressedImage (jpeg or png) to HxWx3 uint8 RGB."""
    fmt = (msg.format or '').lower()
    if not any(name in fmt for name in ('jpeg', 'jpg', 'png')):
        raise ImageConversionError(
            f"unsupported compressed format '{msg.format}'; supported: jpeg, png"
        )
    if len(msg.data) == 0:
        raise ImageConversionError('compressed image has no data')
    encoded = np.frombuffer(bytes(msg.data), dtype=np.uint8)
    bgr = cv2.imdecode(encoded, cv2.IMREAD_COLOR)
    if bgr is None:
        raise ImageConversionError(f"could not decode the '{msg.format}' data")
    if bgr.shape[0] * bgr.shape[1] > max_pixels:
        raise ImageConversionError(
            f'decoded image has {bgr.shape[0] * bgr.shape[1]} pixels, more than the '
            f'maximum of {max_pixels}'
        )
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def array_to_image_msg(array: np.ndarray, encoding: str, header=None):
    """Build a sensor_msgs/Image from an array already laid out as `encoding`."""
    from sensor_msgs.msg import Image

    if encoding not in _OUTPUT_ENCODINGS:
        raise ValueError(f"cannot publish encoding '{encoding}'")
    channels, dtype = _OUTPUT_ENCODINGS[encoding]
    array = np.ascontiguousarray(array)
    expected_ndim = 2 if channels == 1 else 3
    if array.ndim != expected_ndim or (channels > 1 and array.shape[2] != channels):
        raise ValueError(f'array of shape {array.shape} does not match encoding {encoding}')
    if array.dtype != dtype:
        raise ValueError(f'array dtype {array.dtype} does not match encoding {encoding}')
    msg = Image()
    if header is not None:
        msg.header = header
    msg.height, msg.width = int(array.shape[0]), int(array.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = int(array.shape[1] * channels * array.dtype.itemsize)
    msg.data = array.astype(array.dtype.newbyteorder('<'), copy=False).tobytes()
    return msg
