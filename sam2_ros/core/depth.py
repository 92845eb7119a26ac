"""Objects in 3D from a depth image aligned to the colour image (numpy and OpenCV only).

Depth follows REP 118: `16UC1` in millimetres or `32FC1` in metres; 0, NaN and infinities
mean "no depth". An aligned depth image has the colour camera's geometry: pixel (u, v) of the
depth image sees what pixel (u, v) of the colour image sees, so its intrinsics are the colour
camera's, scaled when the depth image has another resolution. `fit_problem` says why a depth
image does not fit; nothing is ever projected with intrinsics that do not match.

Per object (`object_3d`), in the camera's optical frame (REP 103: x right, y down, z forward):
1. the mask border is eroded, because depth at object edges "flies" between the object and
   what lies behind it;
2. depth outliers are rejected around the median by the median absolute deviation (MAD);
3. the remaining pixels are back-projected with the pinhole intrinsics (the images are taken
   as rectified: distortion is not applied);
4. the centre is the mean of those points, the extent an axis-aligned box between robust
   percentiles of each coordinate.
An object with too little valid depth gets no 3D and a reason.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
import math
import threading
import time

import cv2
import numpy as np

MM_PER_M = 1000.0
# encoding -> (numpy dtype, metres per stored unit)
DEPTH_ENCODINGS: dict[str, tuple[type, float]] = {
    '16UC1': (np.uint16, 1.0 / MM_PER_M),
    'mono16': (np.uint16, 1.0 / MM_PER_M),  # some drivers label millimetre depth mono16
    '32FC1': (np.float32, 1.0),
}
MAD_TO_SIGMA = 1.4826  # MAD of a normal distribution times this is its standard deviation
MAX_ROBUST_SAMPLES = 4096  # depths the median and MAD are taken from, at most


class DepthError(ValueError):
    """A depth image or camera_info that cannot be used; the message says why."""


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics of an image: focal lengths and principal point in pixels."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float

    @classmethod
    def from_k(cls, k, width: int, height: int) -> Intrinsics:
        """Build from a row-major 3x3 camera matrix (camera_info `k`); raise DepthError."""
        values = [float(v) for v in k]
        if len(values) != 9:
            raise DepthError(f'camera matrix k must have 9 values, got {len(values)}')
        fx, cx, fy, cy = values[0], values[2], values[4], values[5]
        if not all(math.isfinite(v) for v in (fx, fy, cx, cy)) or fx <= 0 or fy <= 0:
            raise DepthError(
                f'camera matrix has no usable focal lengths (fx={fx:g}, fy={fy:g}): '
                'is the camera calibrated?'
            )
        if width <= 0 or height <= 0:
            raise DepthError(f'camera_info size must be positive, got {width}x{height}')
        return cls(int(width), int(height), fx, fy, cx, cy)

    def scaled(self, width: int, height: int) -> Intrinsics:
        """Return the intrinsics of the same camera resampled to `width` x `height`."""
        sx, sy = width / self.width, height / self.height
        # Pixel centres sit at integer coordinates: scale about the image corner (-0.5, -0.5).
        return Intrinsics(
            width,
            height,
            self.fx * sx,
            self.fy * sy,
            (self.cx + 0.5) * sx - 0.5,
            (self.cy + 0.5) * sy - 0.5,
        )


@dataclass(frozen=True)
class FitTolerance:
    """How closely a depth image's intrinsics must match the colour camera's (scaled)."""

    focal_rel: float = 0.01  # relative difference of fx and fy
    principal_px: float = 2.0  # principal point, in pixels of the depth image
    aspect_px: float = 1.0  # size mismatch after scaling, pixels


def fit_problem(
    depth: Intrinsics, colour: Intrinsics, tolerance: FitTolerance | None = None
) -> str | None:
    """Return why a depth image with `depth` intrinsics is not aligned to `colour`, or None."""
    tol = tolerance or FitTolerance()
    scale = depth.width / colour.width
    if abs(colour.height * scale - depth.height) > tol.aspect_px:
        return (
            f'depth image {depth.width}x{depth.height} is not the colour image '
            f'{colour.width}x{colour.height} at any scale (aspect differs): not aligned'
        )
    expected = colour.scaled(depth.width, depth.height)
    for name in ('fx', 'fy'):
        got, want = getattr(depth, name), getattr(expected, name)
        if abs(got - want) > tol.focal_rel * want:
            return (
                f"depth {name} = {got:.2f} px differs from the colour camera's {want:.2f} px "
                f'(scaled to {depth.width}x{depth.height}) by more than '
                f'{100 * tol.focal_rel:g} %: not aligned to the colour image'
            )
    for name in ('cx', 'cy'):
        got, want = getattr(depth, name), getattr(expected, name)
        if abs(got - want) > tol.principal_px:
            return (
                f"depth {name} = {got:.2f} px differs from the colour camera's {want:.2f} px "
                f'(scaled to {depth.width}x{depth.height}) by more than {tol.principal_px:g} '
                'px: not aligned to the colour image'
            )
    return None


@dataclass(frozen=True)
class DepthImage:
    """One depth image as stored: raw values, their unit, stamp and intrinsics."""

    data: np.ndarray  # (H, W) uint16 (millimetres) or float32 (metres)
    metres_per_unit: float
    stamp_ns: int
    frame_id: str = ''
    intrinsics: Intrinsics | None = None  # from the depth camera_info, None if not received

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return self.data.shape[1], self.data.shape[0]


def depth_array(array: np.ndarray, encoding: str) -> tuple[np.ndarray, float]:
    """Check a depth array against its encoding; return it and its metres per unit."""
    if encoding not in DEPTH_ENCODINGS:
        raise DepthError(
            f"unsupported depth encoding '{encoding}'; supported: {', '.join(DEPTH_ENCODINGS)}"
        )
    dtype, unit = DEPTH_ENCODINGS[encoding]
    if array.ndim != 2:
        raise DepthError(f'a depth image has one channel, got an array of shape {array.shape}')
    if array.dtype != dtype:
        raise DepthError(f'{encoding} depth must be {np.dtype(dtype)}, got {array.dtype}')
    return array, unit


def to_metres(values: np.ndarray, metres_per_unit: float) -> np.ndarray:
    """Convert raw depth values to float32 metres with NaN where there is no depth."""
    metres = values.astype(np.float32) * np.float32(metres_per_unit)
    metres[~(metres > 0) | ~np.isfinite(metres)] = np.nan
    return metres


def metres_to_millimetres(metres: np.ndarray) -> np.ndarray:
    """Encode float metres (NaN = no depth) as 16UC1 millimetres (0 = no depth)."""
    mm = np.round(np.nan_to_num(metres, nan=0.0, posinf=0.0, neginf=0.0) * MM_PER_M)
    return np.clip(mm, 0, np.iinfo(np.uint16).max).astype(np.uint16)


@dataclass(frozen=True)
class Depth3DConfig:
    """Tuning of the per-object 3D estimate; the defaults suit RealSense-class sensors."""

    erode_px: int = 3  # mask border removed before sampling depth (flying pixels)
    mad_factor: float = 3.0  # keep depths within this many robust sigmas of the median
    min_spread_m: float = 0.01  # the outlier band is never narrower than this (+-)
    percentile: float = 1.0  # extent between this percentile and 100 minus it, per axis
    min_points: int = 20  # fewer valid depth points: no 3D
    min_coverage: float = 0.1  # a smaller share of the sampled mask with depth: no 3D
    min_depth_m: float = 0.05  # depths outside [min, max] count as missing
    max_depth_m: float = 20.0

    def validate(self) -> None:
        """Raise ValueError naming the first invalid field."""
        if self.erode_px < 0:
            raise ValueError(f'erode_px must be >= 0, got {self.erode_px}')
        if not self.mad_factor > 0:
            raise ValueError(f'mad_factor must be positive, got {self.mad_factor}')
        if not 0.0 <= self.percentile < 50.0:
            raise ValueError(f'percentile must be in [0, 50), got {self.percentile}')
        if self.min_points < 1:
            raise ValueError(f'min_points must be >= 1, got {self.min_points}')
        if not 0.0 <= self.min_coverage <= 1.0:
            raise ValueError(f'min_coverage must be in [0, 1], got {self.min_coverage}')
        if not 0.0 <= self.min_depth_m < self.max_depth_m:
            raise ValueError(
                f'need 0 <= min_depth_m < max_depth_m, got {self.min_depth_m}, {self.max_depth_m}'
            )


@dataclass(frozen=True)
class Object3D:
    """One object's position and extent in the camera optical frame, metres."""

    centre: tuple[float, float, float] | None  # mean of the inlier points; None: no 3D
    box_centre: tuple[float, float, float] | None  # centre of the percentile box
    box_size: tuple[float, float, float] | None  # edge lengths of that box (x, y, z)
    valid_points: int  # inlier points behind the estimate
    coverage: float  # share of the sampled (eroded) mask pixels that had depth, [0, 1]
    reason: str = ''  # why there is no 3D; empty when there is
    points: np.ndarray | None = field(default=None, repr=False)  # (N, 3) float32 inliers

    @property
    def has_3d(self) -> bool:
        """True when the object has a position and an extent."""
        return self.centre is not None


def no_3d(reason: str, valid_points: int = 0, coverage: float = 0.0) -> Object3D:
    """Return an object without 3D, and why."""
    return Object3D(None, None, None, valid_points, coverage, reason)


def _crop(mask: np.ndarray, box) -> tuple[int, int, np.ndarray] | None:
    if box is None:
        x, y, w, h = cv2.boundingRect(mask.view(np.uint8))
        if w == 0:
            return None
        box = (x, y, x + w, y + h)
    x0, y0, x1, y1 = box
    return x0, y0, mask[y0:y1, x0:x1]


def _sample_mask(inside: np.ndarray, erode_px: int, min_points: int) -> tuple[np.ndarray, int]:
    """Erode the mask border; a mask too thin to survive erosion is sampled whole.

    Returns the sampled mask and the width of the border removed, pixels.
    """
    if erode_px == 0:
        return inside, 0
    size = 2 * erode_px + 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    eroded = cv2.erode(
        inside.view(np.uint8), kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0
    ).view(bool)
    if np.count_nonzero(eroded) < min_points:
        return inside, 0
    return eroded, erode_px


def object_3d(
    mask: np.ndarray,
    depth: np.ndarray,
    metres_per_unit: float,
    intrinsics: Intrinsics,
    config: Depth3DConfig | None = None,
    box: tuple[int, int, int, int] | None = None,
    keep_points: bool = False,
) -> Object3D:
    """Estimate one object's 3D centre and extent from its mask and an aligned depth image.

    `mask` (H, W) bool and `depth` (H, W) share the pixel grid described by `intrinsics`;
    `box` is the mask's tight (x0, y0, x1, y1) box when already known. `keep_points` keeps
    the inlier points (for a point cloud).
    """
    config = config or Depth3DConfig()
    crop = _crop(mask, box)
    if crop is None:
        return no_3d('empty mask')
    x0, y0, inside = crop
    sampled, eroded_px = _sample_mask(inside, config.erode_px, config.min_points)
    flat = np.flatnonzero(sampled)
    if flat.size == 0:
        return no_3d('empty mask')
    h, w = inside.shape
    z = to_metres(depth[y0 : y0 + h, x0 : x0 + w].ravel()[flat], metres_per_unit)
    valid = (z >= config.min_depth_m) & (z <= config.max_depth_m)  # NaN compares False
    count = int(np.count_nonzero(valid))
    coverage = count / flat.size
    if count < config.min_points or coverage < config.min_coverage:
        return no_3d(
            f'too little depth: {count} of {flat.size} mask pixels ({100 * coverage:.0f} %) '
            f'have depth, need {config.min_points} and {100 * config.min_coverage:.0f} %',
            count,
            coverage,
        )
    flat, z = flat[valid], z[valid]
    # The median and MAD of a few thousand evenly spread samples are as good as of all.
    sample = z[:: max(1, z.size // MAX_ROBUST_SAMPLES)]
    median = float(np.median(sample))
    mad = float(np.median(np.abs(sample - median)))
    band = max(config.mad_factor * MAD_TO_SIGMA * mad, config.min_spread_m)
    keep = np.abs(z - median) <= band
    inliers = int(np.count_nonzero(keep))
    if inliers < config.min_points:
        return no_3d(
            f'too few consistent depths: {inliers} within {band:.3f} m of the median',
            inliers,
            coverage,
        )
    flat, z = flat[keep], z[keep]
    rows, cols = np.divmod(flat, w)
    xyz = np.empty((3, z.size), np.float32)  # one contiguous row per axis
    np.multiply(cols.astype(np.float32) + np.float32(x0 - intrinsics.cx), z, out=xyz[0])
    np.multiply(rows.astype(np.float32) + np.float32(y0 - intrinsics.cy), z, out=xyz[1])
    xyz[0] /= np.float32(intrinsics.fx)
    xyz[1] /= np.float32(intrinsics.fy)
    xyz[2] = z
    centre = xyz.mean(axis=1, dtype=np.float64)
    lo, hi = _percentile_range(xyz, config.percentile)
    # Give back the eroded border, at the object's distance, to the box's x and y edges.
    pad = eroded_px * median / np.array([intrinsics.fx, intrinsics.fy, np.inf])
    lo, hi = lo - pad, hi + pad
    return Object3D(
        centre=tuple(float(v) for v in centre),
        box_centre=tuple(float(v) for v in (lo + hi) / 2),
        box_size=tuple(float(v) for v in hi - lo),
        valid_points=inliers,
        coverage=coverage,
        points=np.ascontiguousarray(xyz.T) if keep_points else None,
    )


def _percentile_range(xyz: np.ndarray, percentile: float) -> tuple[np.ndarray, np.ndarray]:
    """Return the `percentile` and 100 - `percentile` order statistics of each row."""
    last = xyz.shape[1] - 1
    k_lo = int(round(last * percentile / 100.0))
    k_hi = last - k_lo
    ordered = np.partition(xyz, (k_lo, k_hi), axis=1)
    return ordered[:, k_lo].astype(np.float64), ordered[:, k_hi].astype(np.float64)


def depth_on_grid(depth: DepthImage, width: int, height: int) -> np.ndarray:
    """Return the depth values on the colour frame's pixel grid (nearest neighbour).

    Nearest-neighbour resampling never mixes a valid depth with a missing one or two surfaces
    into a depth that exists on neither.
    """
    if depth.size == (width, height):
        return depth.data
    return cv2.resize(depth.data, (width, height), interpolation=cv2.INTER_NEAREST)


class DepthPairer:
    """A bounded buffer of recent depth images, paired with colour frames by stamp.

    Thread-safe: depth callbacks put, the publishing thread pairs. `pair` returns the depth
    image nearest in time within `max_offset_ns` of the frame, or None, and counts each.
    """

    def __init__(self, max_offset_ns: int, capacity: int = 30) -> None:
        """Keep the last `capacity` depth images; pair within +-`max_offset_ns`."""
        if capacity < 1:
            raise ValueError(f'capacity must be >= 1, got {capacity}')
        if max_offset_ns < 0:
            raise ValueError(f'max_offset_ns must be >= 0, got {max_offset_ns}')
        self.max_offset_ns = max_offset_ns
        self._images: collections.deque[DepthImage] = collections.deque(maxlen=capacity)
        self._arrived = threading.Condition()
        self.paired = 0
        self.unpaired = 0

    def put(self, image: DepthImage) -> None:
        """Store a depth image (the oldest goes when full) and wake a waiting `pair`."""
        with self._arrived:
            self._images.append(image)
            self._arrived.notify_all()

    def pair(self, stamp_ns: int, wait_s: float = 0.0) -> DepthImage | None:
        """Return the depth image nearest to `stamp_ns` within the window, or None.

        When every buffered depth image is older than the window, the partner may still be in
        transit (depth and colour travel on separate topics): wait up to `wait_s` for it.
        Nothing is waited for before the first depth image ever arrives.
        """
        deadline = time.monotonic() + wait_s
        with self._arrived:
            while True:
                best = min(self._images, key=lambda d: abs(d.stamp_ns - stamp_ns), default=None)
                if best is not None and abs(best.stamp_ns - stamp_ns) <= self.max_offset_ns:
                    self.paired += 1
                    return best
                newest = max((d.stamp_ns for d in self._images), default=None)
                remaining = deadline - time.monotonic()
                late = newest is not None and newest < stamp_ns - self.max_offset_ns
                if not late or remaining <= 0:
                    self.unpaired += 1
                    return None
                self._arrived.wait(remaining)

    def nearest_offset_ns(self, stamp_ns: int) -> int | None:
        """Return the smallest |depth stamp - stamp_ns| buffered, or None when empty."""
        with self._arrived:
            return min((abs(d.stamp_ns - stamp_ns) for d in self._images), default=None)

    def clear(self) -> None:
        """Forget every buffered depth image (counts are kept)."""
        with self._arrived:
            self._images.clear()


@dataclass(frozen=True)
class MaskedObject:
    """What the 3D estimate needs of a tracked object."""

    obj_id: int
    mask: np.ndarray  # (H, W) bool on the colour frame
    box: tuple[int, int, int, int] | None  # tight box of the mask, None when empty


def frame_objects_3d(
    objects: list[MaskedObject],
    depth: DepthImage,
    colour: Intrinsics,
    frame_size: tuple[int, int],
    frame_id: str = '',
    config: Depth3DConfig | None = None,
    keep_points: bool = False,
    tolerance: FitTolerance | None = None,
) -> dict[int, Object3D]:
    """Estimate every object of one colour frame from its paired depth image.

    `colour` is the colour camera_info's intrinsics (scaled here when the frame has another
    size); `frame_size` is the colour frame's (width, height). Raises DepthError when the
    depth image does not fit the colour frame, so that nothing is mis-projected.
    """
    width, height = frame_size
    if depth.intrinsics is None:
        raise DepthError('no depth camera_info received yet: its intrinsics are needed')
    if depth.intrinsics.width != depth.size[0] or depth.intrinsics.height != depth.size[1]:
        raise DepthError(
            f'depth camera_info is for {depth.intrinsics.width}x{depth.intrinsics.height} '
            f'images but the depth image is {depth.size[0]}x{depth.size[1]}'
        )
    if frame_id and depth.frame_id and depth.frame_id != frame_id:
        raise DepthError(
            f"depth image is in frame '{depth.frame_id}', the colour image in '{frame_id}': "
            'an aligned depth image shares the colour optical frame'
        )
    on_frame = colour if colour.width == width and colour.height == height else None
    if on_frame is None:
        on_frame = colour.scaled(width, height)
    problem = fit_problem(depth.intrinsics, on_frame, tolerance)
    if problem:
        raise DepthError(problem)
    data = depth_on_grid(depth, width, height)
    return {
        obj.obj_id: object_3d(
            obj.mask, data, depth.metres_per_unit, on_frame, config, obj.box, keep_points
        )
        for obj in objects
    }
