"""sensor_msgs/Image and CompressedImage <-> numpy, without cv_bridge.

Every incoming image is validated before its buffer is touched: a malformed message raises
ImageConversionError naming the problem, never an IndexError deep inside numpy.
"""

from __future__ import annotations

import struct

import cv2
import numpy as np

from sam2_ros.core.depth import DEPTH_ENCODINGS

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
    '32FC1': (1, np.float32),
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
    """Decode a sensor_msgs/CompressedImage (jpeg or png) to HxWx3 uint8 RGB.

    The size the stream's header claims is checked against `max_pixels` before anything is
    decoded, so a tiny message cannot make the decoder allocate gigabytes.
    """
    fmt = (msg.format or '').lower()
    if not any(name in fmt for name in ('jpeg', 'jpg', 'png')):
        raise ImageConversionError(
            f"unsupported compressed format '{msg.format}'; supported: jpeg, png"
        )
    data = bytes(msg.data)
    if len(data) == 0:
        raise ImageConversionError('compressed image has no data')
    width, height = compressed_size(data)
    if width <= 0 or height <= 0:
        raise ImageConversionError(f'compressed image header claims a size of {width}x{height}')
    if width * height > max_pixels:
        raise ImageConversionError(
            f'compressed image header claims {width * height} pixels ({width}x{height}), more '
            f'than the maximum of {max_pixels}; not decoded'
        )
    try:
        bgr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    except cv2.error as error:
        reason = str(error).strip().splitlines()[-1]
        raise ImageConversionError(f"could not decode the '{msg.format}' data: {reason}") from None
    if bgr is None:
        raise ImageConversionError(f"could not decode the '{msg.format}' data")
    if bgr.shape[0] * bgr.shape[1] > max_pixels:  # the header lied
        raise ImageConversionError(
            f'decoded image has {bgr.shape[0] * bgr.shape[1]} pixels, more than the '
            f'maximum of {max_pixels}'
        )
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


_PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
# JPEG start-of-frame markers (baseline, progressive, lossless, arithmetic): they hold the size.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers without a length field.
_JPEG_STANDALONE = frozenset(range(0xD0, 0xDA)) | {0x01}


def compressed_size(data: bytes) -> tuple[int, int]:
    """Return the (width, height) a PNG or JPEG stream's header claims, without decoding it.

    Raises ImageConversionError when the data is neither, or its header is cut short.
    """
    if data.startswith(_PNG_SIGNATURE):
        # The IHDR chunk comes first: length, b'IHDR', then width and height (big-endian).
        if len(data) < 24 or data[12:16] != b'IHDR':
            raise ImageConversionError('could not decode the PNG data: no IHDR header')
        return int.from_bytes(data[16:20], 'big'), int.from_bytes(data[20:24], 'big')
    if data.startswith(b'\xff\xd8'):
        return _jpeg_size(data)
    raise ImageConversionError(
        'could not decode the data: it starts with neither the PNG nor the JPEG signature'
    )


def _jpeg_size(data: bytes) -> tuple[int, int]:
    """Walk the JPEG segments up to the start-of-frame header and read its size."""
    offset = 2
    while offset + 4 <= len(data):
        if data[offset] != 0xFF:
            break
        marker = data[offset + 1]
        if marker == 0xFF:  # fill byte
            offset += 1
            continue
        if marker in _JPEG_STANDALONE:
            offset += 2
            continue
        length = int.from_bytes(data[offset + 2 : offset + 4], 'big')
        if marker in _JPEG_SOF:
            if offset + 9 > len(data):
                break
            height = int.from_bytes(data[offset + 5 : offset + 7], 'big')
            width = int.from_bytes(data[offset + 7 : offset + 9], 'big')
            return width, height
        if marker == 0xDA or length < 2:  # image data before any frame header
            break
        offset += 2 + length
    raise ImageConversionError('could not decode the JPEG data: no frame header with its size')


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


# compressed_depth_image_transport puts a 12-byte header before the PNG: the compression
# format (int32) and two float32 quantisation parameters (used by 32FC1 inverse depth).
_COMPRESSED_DEPTH_HEADER = struct.Struct('<iff')


def depth_msg_to_array(msg, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[np.ndarray, float]:
    """Return a sensor_msgs/Image depth image as an (H, W) array and its metres per unit.

    `16UC1` (and `mono16`) millimetres come back as uint16, `32FC1` metres as float32, in
    native byte order whatever the message's `is_bigendian`.
    """
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    encoding = msg.encoding
    if encoding not in DEPTH_ENCODINGS:
        raise ImageConversionError(
            f"unsupported depth encoding '{encoding}'; supported: {', '.join(DEPTH_ENCODINGS)}"
        )
    dtype, unit = DEPTH_ENCODINGS[encoding]
    _check_size(width, height, max_pixels)
    itemsize = np.dtype(dtype).itemsize
    if step < width * itemsize:
        raise ImageConversionError(
            f'step {step} is smaller than width*bytes = {width * itemsize} for {encoding}'
        )
    needed = step * height
    if len(msg.data) < needed:
        raise ImageConversionError(
            f'data has {len(msg.data)} bytes, expected step*height = {needed}'
        )
    rows = np.frombuffer(msg.data, dtype=np.uint8, count=needed).reshape(height, step)
    order = '>' if msg.is_bigendian else '<'
    values = rows[:, : width * itemsize].copy().view(np.dtype(dtype).newbyteorder(order))
    return values.astype(dtype, copy=False), unit


def compressed_depth_msg_to_array(
    msg, max_pixels: int = DEFAULT_MAX_PIXELS
) -> tuple[np.ndarray, float]:
    """Decode a depth CompressedImage: `compressedDepth` (PNG) or a plain 16-bit PNG.

    The format names the encoding first, as image_transport writes it: '16UC1; compressedDepth
    png', '32FC1; compressedDepth' (inverse depth, as compressed_depth_image_transport
    quantises it) or '16UC1; png' (compressed transport of a 16-bit image).
    """
    fmt = msg.format or ''
    encoding = fmt.split(';', 1)[0].strip()
    if encoding not in DEPTH_ENCODINGS:
        raise ImageConversionError(
            f"compressed depth format '{fmt}' does not start with a depth encoding "
            f'({", ".join(DEPTH_ENCODINGS)})'
        )
    if 'rvl' in fmt.lower():
        raise ImageConversionError(
            f"compressed depth format '{fmt}': RVL is not supported; use png"
        )
    data = bytes(msg.data)
    params = None
    if 'compresseddepth' in fmt.lower():
        if len(data) <= _COMPRESSED_DEPTH_HEADER.size:
            raise ImageConversionError('compressedDepth image has no data after its header')
        _, quant_a, quant_b = _COMPRESSED_DEPTH_HEADER.unpack_from(data)
        data, params = data[_COMPRESSED_DEPTH_HEADER.size :], (quant_a, quant_b)
    elif 'png' not in fmt.lower():
        raise ImageConversionError(f"compressed depth format '{fmt}': only png is lossless")
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if decoded is None or decoded.ndim != 2 or decoded.dtype != np.uint16:
        raise ImageConversionError(f"could not decode the '{fmt}' data as a 16-bit PNG")
    _check_size(decoded.shape[1], decoded.shape[0], max_pixels)
    dtype, unit = DEPTH_ENCODINGS[encoding]
    if dtype == np.uint16:
        return decoded, unit
    if params is None:
        raise ImageConversionError(f"'{fmt}': a 32FC1 depth PNG needs compressedDepth")
    quant_a, quant_b = params
    metres = np.full(decoded.shape, np.nan, np.float32)
    stored = decoded > 0
    metres[stored] = quant_a / (decoded[stored].astype(np.float32) - quant_b)
    return metres, unit


def _check_size(width: int, height: int, max_pixels: int) -> None:
    if height <= 0 or width <= 0:
        raise ImageConversionError(f'image size must be positive, got {width}x{height}')
    if height * width > max_pixels:
        raise ImageConversionError(
            f'image has {height * width} pixels ({width}x{height}), more than the '
            f'maximum of {max_pixels}'
        )
