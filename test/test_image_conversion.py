import zlib

import cv2
import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage, Image

from sam2_ros.ros.image_conversion import (
    ImageConversionError,
    array_to_image_msg,
    compressed_msg_to_rgb,
    compressed_size,
    image_msg_to_rgb,
)

pytestmark = pytest.mark.ros


@pytest.fixture
def rgb():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(7, 5, 3), dtype=np.uint8)


def _image(array: np.ndarray, encoding: str, pad: int = 0) -> Image:
    rows = array.reshape(array.shape[0], -1)
    if pad:
        rows = np.hstack([rows, np.full((rows.shape[0], pad), 77, np.uint8)])
    msg = Image()
    msg.height, msg.width = array.shape[:2]
    msg.encoding = encoding
    msg.step = rows.shape[1]
    msg.data = rows.tobytes()
    return msg


@pytest.mark.parametrize(
    'encoding, to_wire',
    [
        ('rgb8', None),
        ('bgr8', cv2.COLOR_RGB2BGR),
        ('rgba8', cv2.COLOR_RGB2RGBA),
        ('bgra8', cv2.COLOR_RGB2BGRA),
    ],
)
@pytest.mark.parametrize('pad', [0, 3])
def test_color_encodings_become_rgb(rgb, encoding, to_wire, pad):
    wire = rgb if to_wire is None else cv2.cvtColor(rgb, to_wire)
    out = image_msg_to_rgb(_image(wire, encoding, pad=pad))
    assert out.dtype == np.uint8 and out.flags.c_contiguous
    np.testing.assert_array_equal(out, rgb)


def test_mono8_is_replicated_to_three_channels(rgb):
    gray = rgb[..., 0].copy()
    out = image_msg_to_rgb(_image(gray, 'mono8'))
    assert out.shape == (7, 5, 3)
    for channel in range(3):
        np.testing.assert_array_equal(out[..., channel], gray)


def test_published_image_round_trips(rgb):
    msg = array_to_image_msg(rgb, 'rgb8')
    assert (msg.height, msg.width, msg.step) == (7, 5, 15)
    np.testing.assert_array_equal(image_msg_to_rgb(msg), rgb)
    labels = np.arange(35, dtype=np.uint16).reshape(7, 5) * 1000
    msg16 = array_to_image_msg(labels, '16UC1')
    assert msg16.step == 10 and len(msg16.data) == 70
    with pytest.raises(ValueError, match='dtype'):
        array_to_image_msg(labels, 'mono8')


@pytest.mark.parametrize(
    'mutate, message',
    [
        (lambda m: setattr(m, 'encoding', 'yuv422'), "unsupported encoding 'yuv422'"),
        (lambda m: setattr(m, 'width', 0), 'size must be positive'),
        (lambda m: setattr(m, 'step', 14), 'step 14 is smaller than'),
        (lambda m: setattr(m, 'data', bytes(m.data[:-1])), 'expected step\\*height = 105'),
        (lambda m: setattr(m, 'height', 100000), 'expected step\\*height'),
    ],
)
def test_malformed_images_are_rejected_with_a_reason(rgb, mutate, message):
    msg = _image(rgb, 'rgb8')
    mutate(msg)
    with pytest.raises(ImageConversionError, match=message):
        image_msg_to_rgb(msg)


def test_pixel_limit(rgb):
    with pytest.raises(ImageConversionError, match='more than the maximum of 34'):
        image_msg_to_rgb(_image(rgb, 'rgb8'), max_pixels=34)


@pytest.mark.parametrize('fmt, ext', [('png', '.png'), ('jpeg', '.jpg'), ('rgb8; png', '.png')])
def test_compressed_images(rgb, fmt, ext):
    ok, encoded = cv2.imencode(ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    msg = CompressedImage(format=fmt, data=encoded.tobytes())
    out = compressed_msg_to_rgb(msg)
    assert out.shape == rgb.shape
    if ext == '.png':
        np.testing.assert_array_equal(out, rgb)


def test_bad_compressed_images():
    with pytest.raises(ImageConversionError, match="unsupported compressed format 'tiff'"):
        compressed_msg_to_rgb(CompressedImage(format='tiff', data=b'1234'))
    with pytest.raises(ImageConversionError, match='no data'):
        compressed_msg_to_rgb(CompressedImage(format='png', data=b''))
    with pytest.raises(ImageConversionError, match='could not decode'):
        compressed_msg_to_rgb(CompressedImage(format='png', data=b'not a png at all'))


def _png_header_only(width: int, height: int) -> bytes:
    """Return a PNG whose IHDR claims `width`x`height`, then a token of image data."""
    ihdr = width.to_bytes(4, 'big') + height.to_bytes(4, 'big') + bytes([8, 2, 0, 0, 0])
    chunk = len(ihdr).to_bytes(4, 'big') + b'IHDR' + ihdr
    crc = zlib.crc32(b'IHDR' + ihdr).to_bytes(4, 'big')
    idat = zlib.compress(b'\x00' * 16)
    idat_chunk = len(idat).to_bytes(4, 'big') + b'IDAT' + idat
    idat_crc = zlib.crc32(b'IDAT' + idat).to_bytes(4, 'big')
    return b'\x89PNG\r\n\x1a\n' + chunk + crc + idat_chunk + idat_crc


def test_a_header_claiming_a_huge_size_is_refused_before_decoding(monkeypatch):
    data = _png_header_only(40000, 40000)
    assert len(data) < 80
    msg = CompressedImage(format='png', data=data)

    def never(*args):
        raise AssertionError('decoded although the header claims too many pixels')

    monkeypatch.setattr(cv2, 'imdecode', never)
    with pytest.raises(ImageConversionError, match=r'claims 1600000000 pixels \(40000x40000\)'):
        compressed_msg_to_rgb(msg)


def test_decoder_failures_become_conversion_errors():
    # Within our limit but beyond OpenCV's own: cv2.imdecode raises, which must not escape.
    msg = CompressedImage(format='png', data=_png_header_only(40000, 40000))
    with pytest.raises(ImageConversionError, match="could not decode the 'png' data"):
        compressed_msg_to_rgb(msg, max_pixels=1 << 31)
    with pytest.raises(ImageConversionError, match='claims a size of 0x7'):
        compressed_msg_to_rgb(CompressedImage(format='png', data=_png_header_only(0, 7)))
    with pytest.raises(ImageConversionError, match='no IHDR'):
        compressed_msg_to_rgb(CompressedImage(format='png', data=b'\x89PNG\r\n\x1a\n'))


def test_jpeg_size_is_read_from_its_frame_header(rgb):
    ok, encoded = cv2.imencode('.jpg', rgb)
    assert ok
    data = encoded.tobytes()
    assert compressed_size(data) == (5, 7)
    cut = data[: data.index(b'\xff\xc0')]  # everything before the frame header
    with pytest.raises(ImageConversionError, match='no frame header'):
        compressed_msg_to_rgb(CompressedImage(format='jpeg', data=cut))
    with pytest.raises(ImageConversionError, match='more than the maximum of 34'):
        compressed_msg_to_rgb(CompressedImage(format='jpeg', data=data), max_pixels=34)
