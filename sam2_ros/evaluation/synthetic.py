"""Semi-synthetic sequences with exact ground truth: real objects moving over real video.

Objects are patches of real photographs (Debian's opencv-doc examples: an orange, an apple,
a baboon...) cut by a known shape (ellipse, rounded rectangle, hexagon, star), so their masks
are exact. They move over real footage (`vtest.avi`, `tree.avi`, `Megamind.avi`, resized to
the requested size, played forwards then backwards when too short) along piecewise-linear
paths of position, scale and rotation; they pass in front of each other and behind occluder
bars, and leave and re-enter the view. Compositing is hard (no blending), so the ground truth
is exact for the rendered pixels: per frame and object, the visible mask (occlusion and
image bounds applied), its box, the whole (amodal) box, the visible fraction and the class.

Without opencv-doc (or a photo or video missing from it), deterministic generated textures
stand in and `Sequence.source` says so. Everything is deterministic for a given spec.

Coordinates are continuous pixels: pixel (row i, column j) covers [j, j + 1) x [i, i + 1),
so its centre is (j + 0.5, i + 0.5); boxes are (x0, y0, x1, y1) with exclusive x1, y1.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
import functools
import math
import os
from pathlib import Path
from typing import NamedTuple
import zlib

import cv2
import numpy as np

# Where the real footage and photographs are; `generate` reads this at call time, so tests
# may point it elsewhere. SAM2_ROS_OPENCV_DATA overrides the Debian location.
OPENCV_DATA = Path(
    os.environ.get('SAM2_ROS_OPENCV_DATA', '/usr/share/doc/opencv-doc/examples/data')
)
BACKGROUND_VIDEOS = ('vtest.avi', 'tree.avi', 'Megamind.avi')
SHAPES = ('ellipse', 'rounded_rect', 'hexagon', 'star')
REAL, GENERATED = 'opencv-doc', 'generated'

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class Photo:
    """A photograph objects are cut from, and the class they get."""

    name: str  # class name
    filename: str  # in the opencv-doc data directory
    crop: tuple[float, float, float, float]  # the subject: (x0, y0, x1, y1), fractions
    color: tuple[int, int, int]  # mean RGB colour of the generated stand-in texture


# Class ids are indices into this tuple (orange 0, apple 1, ...).
PHOTOS = (
    Photo('orange', 'orange.jpg', (0.06, 0.12, 0.9, 0.95), (225, 140, 40)),
    Photo('apple', 'apple.jpg', (0.12, 0.1, 0.9, 0.95), (190, 45, 35)),
    Photo('baboon', 'baboon.jpg', (0.1, 0.0, 0.9, 0.95), (130, 110, 90)),
    Photo('butterfly', 'butterfly.jpg', (0.12, 0.05, 0.88, 0.9), (60, 60, 50)),
    Photo('fish', 'HappyFish.jpg', (0.15, 0.05, 0.95, 0.95), (235, 150, 70)),
    Photo('dog', 'chicky_512.png', (0.15, 0.1, 0.85, 0.9), (115, 85, 60)),
)
CLASS_NAMES = {i: photo.name for i, photo in enumerate(PHOTOS)}
# Texture of occluder bars (not an object class).
OCCLUDER_PHOTO = Photo('building', 'building.jpg', (0.0, 0.0, 1.0, 1.0), (140, 135, 130))


class Waypoint(NamedTuple):
    """An object's pose at one frame: centre (x, y) in pixels, scale, rotation in degrees.

    The rotation is counter-clockwise as displayed. Between waypoints every value is
    interpolated linearly (constant velocity); before the first and after the last the
    pose holds.
    """

    frame: float
    x: float
    y: float
    scale: float = 1.0
    angle: float = 0.0


def linear_path(
    start: tuple[float, float],
    velocity: tuple[float, float],
    num_frames: int,
    scale_rate: float = 0.0,
    rotation_rate: float = 0.0,
) -> tuple[Waypoint, Waypoint]:
    """Return a constant-velocity path: pixels, scale (+0.01 = +1 %) and degrees per frame."""
    last = max(1, num_frames - 1)
    return (
        Waypoint(0, start[0], start[1], 1.0, 0.0),
        Waypoint(
            last,
            start[0] + velocity[0] * last,
            start[1] + velocity[1] * last,
            1.0 + scale_rate * last,
            rotation_rate * last,
        ),
    )


@dataclass(frozen=True)
class ObjectSpec:
    """One object: the photo it is cut from, its shape and size, and how it moves."""

    photo: int | str  # class id (index into PHOTOS) or class name
    shape: str  # one of SHAPES
    size: tuple[float, float]  # width, height in pixels at scale 1
    path: tuple[Waypoint, ...]  # key poses, sorted by frame (see Waypoint)
    depth: int = 0  # larger is closer to the camera: drawn later, hides the others

    @property
    def class_id(self) -> int:
        """Index of the photo in PHOTOS."""
        return photo_index(self.photo)

    def pose(self, frame: float) -> Waypoint:
        """Interpolate the pose at `frame`."""
        path = self.path
        if frame <= path[0].frame:
            return path[0]._replace(frame=frame)
        for a, b in zip(path[:-1], path[1:], strict=True):
            if frame <= b.frame:
                u = (frame - a.frame) / (b.frame - a.frame) if b.frame > a.frame else 1.0
                values = [va + u * (vb - va) for va, vb in zip(a[1:], b[1:], strict=True)]
                return Waypoint(frame, *values)
        return path[-1]._replace(frame=frame)


@dataclass(frozen=True)
class OccluderSpec:
    """A textured bar drawn over every object (not itself an object)."""

    box: tuple[float, float, float, float]  # x0, y0, x1, y1 at frame 0
    velocity: tuple[float, float] = (0.0, 0.0)  # pixels per frame


@dataclass(frozen=True)
class SequenceSpec:
    """A whole sequence; ground-truth ids are 1..N in the order of `objects`."""

    objects: tuple[ObjectSpec, ...]
    num_frames: int = 60
    width: int = 640
    height: int = 480
    background: str = 'vtest.avi'  # one of BACKGROUND_VIDEOS
    occluders: tuple[OccluderSpec, ...] = ()
    seed: int = 0  # varies the generated stand-in textures (real data does not depend on it)
    background_start: int = 0  # first video frame used


@dataclass(frozen=True)
class ObjectTruth:
    """Ground truth of one object on one frame."""

    mask: np.ndarray  # (H, W) bool, visible pixels only
    box: Box | None  # box of the visible mask, None when nothing is visible
    visible_fraction: float  # visible pixels / pixels of the whole (amodal) object
    class_id: int
    class_name: str
    amodal_box: Box | None = None  # the whole object, may extend past the image; None if
    # the object is entirely outside the image
    in_frame_fraction: float | None = None  # pixels inside the image / whole object

    @property
    def visible(self) -> bool:
        """True when at least one pixel of the object is visible."""
        return self.box is not None


FrameTruth = dict[int, ObjectTruth]  # ground-truth id -> truth, every object on every frame


@dataclass
class Sequence:
    """Frames (HxWx3 uint8 RGB) and per-frame ground truth keyed by ground-truth id (1..N)."""

    frames: list[np.ndarray]
    truth: list[FrameTruth]
    source: str  # 'opencv-doc' (all real), 'generated' (all stand-ins) or 'mixed'
    spec: SequenceSpec
    class_names: dict[int, str] = field(default_factory=lambda: dict(CLASS_NAMES))
    assets: dict[str, str] = field(default_factory=dict)  # file name -> where it came from

    def __len__(self) -> int:
        """Return the number of frames."""
        return len(self.frames)

    @property
    def width(self) -> int:
        """Frame width in pixels."""
        return self.spec.width

    @property
    def height(self) -> int:
        """Frame height in pixels."""
        return self.spec.height

    @property
    def gt_ids(self) -> list[int]:
        """Ground-truth ids, ascending."""
        return list(range(1, len(self.spec.objects) + 1))


def photo_index(photo: int | str) -> int:
    """Return the class id of a photo given by class id or class name."""
    if isinstance(photo, str):
        for i, candidate in enumerate(PHOTOS):
            if candidate.name == photo:
                return i
        raise ValueError(f"unknown photo '{photo}'; use one of {[p.name for p in PHOTOS]}")
    if isinstance(photo, bool) or not isinstance(photo, int) or not 0 <= photo < len(PHOTOS):
        raise ValueError(f'photo index must be in 0..{len(PHOTOS) - 1}, got {photo!r}')
    return photo


# ---------------------------------------------------------------------------------- assets


def generated_texture(key: str, width: int, height: int, color, seed: int = 0) -> np.ndarray:
    """Deterministic multi-scale noise around `color` (RGB uint8): a stand-in photograph."""
    rng = np.random.default_rng([zlib.crc32(key.encode()), seed])
    longest = max(width, height)
    total = np.zeros((height, width, 3), np.float32)
    for cells, weight in ((3, 0.35), (10, 0.3), (30, 0.2), (90, 0.15)):
        grid = rng.random(
            (max(2, cells * height // longest), max(2, cells * width // longest), 3), np.float32
        )
        total += weight * cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
    texture = np.asarray(color, np.float32) + (total - 0.5) * 200.0
    return np.clip(texture, 0, 255).astype(np.uint8)


@functools.lru_cache(maxsize=32)
def _read_photo(path: str) -> np.ndarray | None:
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        return None
    rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    rgb.flags.writeable = False  # shared by every sequence made from it
    return rgb


def _texture(
    photo: Photo, width: int, height: int, data_dir: Path, seed: int, assets: dict
) -> np.ndarray:
    """Crop the photo's subject to the aspect of `width` x `height` and resize it to that."""
    path = data_dir / photo.filename
    image = _read_photo(str(path)) if path.is_file() else None
    if image is None:
        assets[photo.filename] = GENERATED
        return generated_texture(photo.name, width, height, photo.color, seed)
    assets[photo.filename] = REAL
    ph, pw = image.shape[:2]
    x0, y0, x1, y1 = (round(f * n) for f, n in zip(photo.crop, (pw, ph, pw, ph), strict=True))
    subject = image[y0:y1, x0:x1]
    sh, sw = subject.shape[:2]
    aspect = width / height
    cw, ch = (sw, max(1, round(sw / aspect))) if sw / sh < aspect else (round(sh * aspect), sh)
    cx0, cy0 = (sw - cw) // 2, (sh - ch) // 2
    subject = subject[cy0 : cy0 + ch, cx0 : cx0 + cw]
    shrink = width < cw
    return cv2.resize(
        subject, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    )


def pingpong_indices(count: int, length: int) -> list[int]:
    """Return `count` indices into `length` frames, played forwards, backwards, forwards..."""
    if length <= 0:
        raise ValueError(f'length must be positive, got {length}')
    cycle = list(range(length)) + list(range(length - 2, 0, -1))
    return [cycle[i % len(cycle)] for i in range(count)]


def _read_video(path: Path, start: int, count: int, width: int, height: int):
    """Up to `count` frames from `start` (wrapped to the video length), RGB, resized."""
    for attempt in range(2):
        capture = cv2.VideoCapture(str(path))
        if not capture.isOpened():
            return []
        frames, seen = [], 0
        try:
            while seen < start and capture.grab():  # skipped frames are not converted
                seen += 1
            while seen >= start and len(frames) < count:
                ok, bgr = capture.read()
                if not ok:
                    break
                seen += 1
                # Area averaging only when shrinking a lot (it is slow); bilinear otherwise.
                strong = bgr.shape[1] > 2 * width
                bgr = cv2.resize(
                    bgr,
                    (width, height),
                    interpolation=cv2.INTER_AREA if strong else cv2.INTER_LINEAR,
                )
                frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        finally:
            capture.release()
        if frames or seen == 0 or attempt:
            return frames
        start %= seen  # `start` was past the end: wrap it around the video's length
    return []


def _background(spec: SequenceSpec, data_dir: Path, assets: dict) -> list[np.ndarray]:
    """One background image per frame (shared arrays: copy before drawing on them)."""
    path = data_dir / spec.background
    frames = (
        _read_video(path, spec.background_start, spec.num_frames, spec.width, spec.height)
        if path.is_file()
        else []
    )
    if frames:
        assets[spec.background] = REAL
    else:  # a generated texture, panned slowly back and forth like a camera
        assets[spec.background] = GENERATED
        margin = 24
        canvas = generated_texture(
            spec.background,
            spec.width + 2 * margin,
            spec.height + 2 * margin,
            (120, 125, 115),
            spec.seed,
        )
        frames = []
        for dx in pingpong_indices(min(spec.num_frames, 2 * margin), 2 * margin + 1):
            dy = dx // 2
            frames.append(canvas[dy : dy + spec.height, dx : dx + spec.width])
    return [frames[i] for i in pingpong_indices(spec.num_frames, len(frames))]


# ---------------------------------------------------------------------------------- shapes


def _polygon(vertices: np.ndarray, width: int, height: int) -> np.ndarray:
    mask = np.zeros((height, width), np.uint8)
    # Continuous coordinates to pixel indices, in 1/256 pixel (sub-pixel accurate edges).
    points = np.round((vertices - 0.5) * 256).astype(np.int32)
    cv2.fillPoly(mask, [points], 1, lineType=cv2.LINE_8, shift=8)
    return mask


def shape_mask(shape: str, width: int, height: int) -> np.ndarray:
    """Return a (height, width) uint8 0/1 mask of `shape` inscribed in the rectangle."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32) + 0.5
    cx, cy, rx, ry = width / 2, height / 2, width / 2, height / 2
    if shape == 'ellipse':
        inside = ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1.0
    elif shape == 'rounded_rect':
        r = 0.25 * min(width, height)
        dx = np.maximum(np.abs(x - cx) - (rx - r), 0.0)
        dy = np.maximum(np.abs(y - cy) - (ry - r), 0.0)
        inside = dx * dx + dy * dy <= r * r
    elif shape == 'hexagon':
        angles = np.deg2rad(np.arange(6) * 60.0)
        vertices = np.stack([cx + rx * np.cos(angles), cy + ry * np.sin(angles)], axis=1)
        return _polygon(vertices, width, height)
    elif shape == 'star':
        angles = np.deg2rad(np.arange(10) * 36.0 - 90.0)
        radius = np.where(np.arange(10) % 2 == 0, 1.0, 0.45)
        vertices = np.stack(
            [cx + rx * radius * np.cos(angles), cy + ry * radius * np.sin(angles)], axis=1
        )
        return _polygon(vertices, width, height)
    else:
        raise ValueError(f"unknown shape '{shape}'; use one of {SHAPES}")
    return inside.astype(np.uint8)


# ---------------------------------------------------------------------------------- render


@dataclass
class _Sprite:
    spec: ObjectSpec
    gt_id: int
    class_id: int
    texture: np.ndarray  # (h, w, 3) RGB at `resolution` x the object's size
    mask: np.ndarray  # (h, w) uint8 0/1
    resolution: float


@dataclass
class _Layer:
    gt_id: int | None  # None for an occluder
    x0: int  # where `mask` lies in the frame (clipped to it)
    y0: int
    mask: np.ndarray  # bool, the part inside the frame
    area: int = 0  # whole object, inside the frame or not
    amodal_box: Box | None = None


def _validate(spec: SequenceSpec) -> None:
    if spec.num_frames < 1:
        raise ValueError(f'num_frames must be positive, got {spec.num_frames}')
    if spec.width < 16 or spec.height < 16:
        raise ValueError(f'frames must be at least 16x16, got {spec.width}x{spec.height}')
    if spec.background not in BACKGROUND_VIDEOS:
        raise ValueError(f"unknown background '{spec.background}'; use {BACKGROUND_VIDEOS}")
    if spec.background_start < 0:
        raise ValueError(f'background_start must be >= 0, got {spec.background_start}')
    for i, obj in enumerate(spec.objects):
        photo_index(obj.photo)
        if obj.shape not in SHAPES:
            raise ValueError(f"object {i + 1}: unknown shape '{obj.shape}'; use one of {SHAPES}")
        if not (obj.size[0] >= 2 and obj.size[1] >= 2):
            raise ValueError(f'object {i + 1}: size must be at least 2x2, got {obj.size}')
        if not obj.path:
            raise ValueError(f'object {i + 1}: the path needs at least one waypoint')
        frames = [w.frame for w in obj.path]
        if frames != sorted(frames):
            raise ValueError(f'object {i + 1}: waypoints must be sorted by frame')
        if min(w.scale for w in obj.path) <= 0:
            raise ValueError(f'object {i + 1}: scales must be positive')


def _sprite(obj: ObjectSpec, gt_id: int, data_dir: Path, seed: int, assets: dict) -> _Sprite:
    # Render at the largest scale the path reaches, so warping only ever shrinks.
    resolution = max(1.0, max(w.scale for w in obj.path))
    width = max(2, round(obj.size[0] * resolution))
    height = max(2, round(obj.size[1] * resolution))
    class_id = photo_index(obj.photo)
    texture = _texture(PHOTOS[class_id], width, height, data_dir, seed, assets)
    return _Sprite(obj, gt_id, class_id, texture, shape_mask(obj.shape, width, height), resolution)


def _draw_sprite(frame: np.ndarray, sprite: _Sprite, t: int) -> _Layer:
    """Warp the sprite to its pose on frame `t`, draw it, and return where it landed."""
    height, width = frame.shape[:2]
    pose = sprite.spec.pose(t)
    sh, sw = sprite.mask.shape
    # Sprite pixel indices -> frame pixel indices (index = continuous coordinate - 0.5).
    centre = ((sw - 1) / 2.0, (sh - 1) / 2.0)
    matrix = cv2.getRotationMatrix2D(centre, pose.angle, pose.scale / sprite.resolution)
    matrix[:, 2] += (pose.x - 0.5 - centre[0], pose.y - 0.5 - centre[1])
    left, top, right, bottom = -0.5, -0.5, sw - 0.5, sh - 0.5
    corners = np.array([[left, top, 1], [right, top, 1], [left, bottom, 1], [right, bottom, 1]])
    xs, ys = (corners @ matrix.T).T
    bx0, by0 = math.floor(xs.min()) - 1, math.floor(ys.min()) - 1
    bx1, by1 = math.ceil(xs.max()) + 2, math.ceil(ys.max()) + 2
    matrix[:, 2] -= (bx0, by0)
    size = (bx1 - bx0, by1 - by0)
    full = cv2.warpAffine(sprite.mask, matrix, size, flags=cv2.INTER_NEAREST).view(bool)
    area = int(np.count_nonzero(full))
    fx0, fy0, fx1, fy1 = max(bx0, 0), max(by0, 0), min(bx1, width), min(by1, height)
    if fx1 <= fx0 or fy1 <= fy0:
        return _Layer(sprite.gt_id, 0, 0, np.zeros((0, 0), bool), area, None)
    inside = full[fy0 - by0 : fy1 - by0, fx0 - bx0 : fx1 - bx0]
    if not inside.any():
        return _Layer(sprite.gt_id, fx0, fy0, inside, area, None)
    texture = cv2.warpAffine(
        sprite.texture, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    region = frame[fy0:fy1, fx0:fx1]
    region[inside] = texture[fy0 - by0 : fy1 - by0, fx0 - bx0 : fx1 - bx0][inside]
    x, y, w, h = cv2.boundingRect(full.view(np.uint8))
    return _Layer(
        sprite.gt_id, fx0, fy0, inside, area, (bx0 + x, by0 + y, bx0 + x + w, by0 + y + h)
    )


def occluder_size(occluder: OccluderSpec) -> tuple[int, int]:
    """Return the (width, height) in pixels an occluder bar is drawn with."""
    x0, y0, x1, y1 = occluder.box
    return round(x1) - round(x0), round(y1) - round(y0)


def occluder_box(occluder: OccluderSpec, t: int) -> tuple[int, int, int, int]:
    """Return where the bar lies on frame `t`: (x0, y0, x1, y1), not clipped to the image."""
    w, h = occluder_size(occluder)
    x0 = round(occluder.box[0] + occluder.velocity[0] * t)
    y0 = round(occluder.box[1] + occluder.velocity[1] * t)
    return x0, y0, x0 + w, y0 + h


def _draw_occluder(frame: np.ndarray, occluder: OccluderSpec, texture: np.ndarray, t: int):
    height, width = frame.shape[:2]
    x0, y0, x1, y1 = occluder_box(occluder, t)
    fx0, fy0, fx1, fy1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    if fx1 <= fx0 or fy1 <= fy0:
        return None
    frame[fy0:fy1, fx0:fx1] = texture[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0]
    return _Layer(None, fx0, fy0, np.ones((fy1 - fy0, fx1 - fx0), bool))


def generate(spec: SequenceSpec, data_dir: str | Path | None = None) -> Sequence:
    """Render `spec` into frames and exact ground truth.

    `data_dir` holds the opencv-doc photographs and videos (default: OPENCV_DATA); what is
    missing there is replaced by generated textures, recorded in `Sequence.assets`.
    """
    _validate(spec)
    data_dir = OPENCV_DATA if data_dir is None else Path(data_dir)
    assets: dict[str, str] = {}
    backgrounds = _background(spec, data_dir, assets)
    sprites = [
        _sprite(obj, gt_id, data_dir, spec.seed, assets)
        for gt_id, obj in enumerate(spec.objects, start=1)
    ]
    sprites.sort(key=lambda s: s.spec.depth)  # stable: equal depths keep the spec order
    by_id = {sprite.gt_id: sprite for sprite in sprites}
    occluder_textures = []
    for occluder in spec.occluders:
        w, h = occluder_size(occluder)
        if w < 1 or h < 1:
            raise ValueError(f'occluder box {occluder.box} is empty')
        occluder_textures.append(_texture(OCCLUDER_PHOTO, w, h, data_dir, spec.seed, assets))

    frames, truth = [], []
    shape = (spec.height, spec.width)
    for t in range(spec.num_frames):
        frame = backgrounds[t].copy()
        layers = [_draw_sprite(frame, sprite, t) for sprite in sprites]
        for occluder, texture in zip(spec.occluders, occluder_textures, strict=True):
            layer = _draw_occluder(frame, occluder, texture, t)
            if layer is not None:
                layers.append(layer)
        covered = np.zeros(shape, bool)  # pixels taken by layers drawn later (in front)
        frame_truth = {}
        for layer in reversed(layers):
            h, w = layer.mask.shape
            window = covered[layer.y0 : layer.y0 + h, layer.x0 : layer.x0 + w]
            visible = layer.mask & ~window
            window |= layer.mask
            if layer.gt_id is None:
                continue
            mask = np.zeros(shape, bool)
            mask[layer.y0 : layer.y0 + h, layer.x0 : layer.x0 + w] = visible
            x, y, bw, bh = cv2.boundingRect(visible.view(np.uint8)) if h and w else (0, 0, 0, 0)
            box = (layer.x0 + x, layer.y0 + y, layer.x0 + x + bw, layer.y0 + y + bh)
            area = max(layer.area, 1)
            sprite = by_id[layer.gt_id]
            frame_truth[layer.gt_id] = ObjectTruth(
                mask=mask,
                box=box if bw else None,
                visible_fraction=float(np.count_nonzero(visible) / area),
                class_id=sprite.class_id,
                class_name=PHOTOS[sprite.class_id].name,
                amodal_box=layer.amodal_box,
                in_frame_fraction=float(np.count_nonzero(layer.mask) / area),
            )
        frames.append(frame)
        truth.append(dict(sorted(frame_truth.items())))
    kinds = set(assets.values())
    source = kinds.pop() if len(kinds) == 1 else 'mixed'
    return Sequence(frames, truth, source, spec, dict(CLASS_NAMES), assets)


# ---------------------------------------------------------------------------------- scenarios


def _unit(width: int, height: int) -> float:
    """Pixels of this size per pixel of the 640x480 design of the scenarios."""
    return min(width / 640, height / 480)


Layout = tuple[tuple[ObjectSpec, ...], tuple[OccluderSpec, ...]]


def _translation(rng, u: float, n: int, width: int, height: int, speed: float = 4.0) -> Layout:
    """One orange translating at `speed` pixels per frame (at 640x480), always fully visible.

    The seed picks the direction (within 30 degrees of horizontal) and the video start.
    """
    size = (110 * u, 100 * u)
    heading = float(rng.uniform(-math.pi / 6, math.pi / 6)) + (math.pi * (rng.random() < 0.5))
    vx, vy = speed * u * math.cos(heading), speed * u * math.sin(heading)
    span_x, span_y = abs(vx) * (n - 1), abs(vy) * (n - 1)
    room_x, room_y = width - size[0] - 4, height - size[1] - 4
    if span_x > room_x or span_y > room_y:
        raise ValueError(
            f'{n} frames at {speed} px/frame leave the {width}x{height} view; '
            'lower the speed or the number of frames'
        )
    start = (width / 2 - vx * (n - 1) / 2, height / 2 - vy * (n - 1) / 2)
    return (ObjectSpec('orange', 'ellipse', size, linear_path(start, (vx, vy), n)),), ()


def _occlusion(rng, u: float, n: int, width: int, height: int) -> Layout:
    """Slide an orange (1) behind a bar: partial, then full occlusion, then out again.

    The orange crosses from 15 % to 85 % of the width (at most 12 px/frame at 640x480, the
    path centred on the bar); an apple (2) drifts slowly in the top right, never occluded.
    """
    bar = (0.453 * width, 0.0, 0.656 * width, float(height))
    centre = (bar[0] + bar[2]) / 2
    speed = min(0.7 * width / (n - 1), 12.0 * u)
    half = speed * (n - 1) / 2
    y = height / 2 + float(rng.uniform(-0.04, 0.04)) * height
    orange = ObjectSpec(
        'orange', 'ellipse', (100 * u, 100 * u), linear_path((centre - half, y), (speed, 0.0), n)
    )
    apple = ObjectSpec(
        'apple',
        'hexagon',
        (90 * u, 90 * u),
        (
            Waypoint(0, 0.78 * width, 0.23 * height),
            Waypoint(n - 1, 0.74 * width, 0.29 * height, 1.0, 15.0),
        ),
    )
    return (orange, apple), (OccluderSpec(bar),)


def _crossing(rng, u: float, n: int, width: int, height: int) -> Layout:
    """Pass a baboon (2) in front of an orange (1): partial, then full occlusion, then out.

    The orange drifts slowly near the centre; the larger baboon crosses from left to right
    at the same height, hiding it completely for a few frames. A fish (3) swims below.
    """
    y = 0.42 * height + float(rng.uniform(-0.03, 0.03)) * height
    last = n - 1
    orange = ObjectSpec(
        'orange',
        'ellipse',
        (90 * u, 85 * u),
        (Waypoint(0, 0.47 * width, y), Waypoint(last, 0.53 * width, y + 10 * u, 1.05)),
    )
    baboon = ObjectSpec(
        'baboon',
        'rounded_rect',
        (190 * u, 180 * u),
        (Waypoint(0, 0.18 * width, y), Waypoint(last, 0.82 * width, y, 1.0, -8.0)),
        depth=1,
    )
    fish = ObjectSpec(
        'fish',
        'ellipse',
        (120 * u, 80 * u),
        (Waypoint(0, 0.75 * width, 0.85 * height), Waypoint(last, 0.6 * width, 0.86 * height)),
    )
    return (orange, baboon, fish), ()


def _exit_reentry(rng, u: float, n: int, width: int, height: int) -> Layout:
    """Move an apple (1) out through the right edge, keep it out, and bring it back.

    Fully outside from 35 % to 60 % of the sequence; an orange (2) stays in view, drifting.
    """
    last = n - 1
    size = (100 * u, 90 * u)
    y = height / 2 + float(rng.uniform(-0.05, 0.05)) * height
    outside = width + size[0] / 2 + 10 * u
    apple = ObjectSpec(
        'apple',
        'rounded_rect',
        size,
        (
            Waypoint(0, 0.7 * width, y),
            Waypoint(0.35 * last, outside, y),
            Waypoint(0.6 * last, outside, y + 20 * u),
            Waypoint(last, 0.65 * width, y + 20 * u),
        ),
    )
    orange = ObjectSpec(
        'orange',
        'ellipse',
        (110 * u, 80 * u),
        linear_path((0.25 * width, 0.25 * height), (0.5 * u, 0.5 * u), n, 0.001, 0.2),
    )
    return (apple, orange), ()


_MOTION_OBJECTS = (
    ('orange', 'ellipse', 1.1),
    ('apple', 'rounded_rect', 1.0),
    ('butterfly', 'hexagon', 1.2),
    ('fish', 'ellipse', 1.4),
    ('baboon', 'rounded_rect', 0.9),
    ('dog', 'star', 1.0),
)


def _moderate_motion(
    rng, u: float, n: int, width: int, height: int, num_objects: int = 3, speed: float = 2.5
) -> Layout:
    """Wander a few objects at up to `speed` px/frame (at 640x480), mildly scaling and turning.

    Each object has its own cell of a grid, so they never touch; every 8 frames it heads a
    new random way (seeded), with scale in [0.9, 1.1] and rotation within +-12 degrees
    (under 1 degree per frame). Objects: orange (1), apple (2), butterfly (3), then fish,
    baboon, dog.
    """
    if not 1 <= num_objects <= len(_MOTION_OBJECTS):
        raise ValueError(f'num_objects must be in 1..{len(_MOTION_OBJECTS)}, got {num_objects}')
    columns = 1 if num_objects == 1 else 2 if num_objects <= 4 else 3
    rows = math.ceil(num_objects / columns)
    cell_w, cell_h = width / columns, height / rows
    base = 0.42 * min(cell_w, cell_h)
    step = 8
    objects = []
    for k in range(num_objects):
        photo, shape, aspect = _MOTION_OBJECTS[k]
        size = (base * math.sqrt(aspect), base / math.sqrt(aspect))
        reach = 1.12 * math.hypot(*size) / 2 + 2  # half-extent at any rotation, scale <= 1.1
        col, row = k % columns, k // columns
        lo_x, hi_x = col * cell_w + reach, (col + 1) * cell_w - reach
        lo_y, hi_y = row * cell_h + reach, (row + 1) * cell_h - reach
        if lo_x > hi_x:
            lo_x = hi_x = (col + 0.5) * cell_w
        if lo_y > hi_y:
            lo_y = hi_y = (row + 0.5) * cell_h
        x, y = float(rng.uniform(lo_x, hi_x)), float(rng.uniform(lo_y, hi_y))
        scale, angle = float(rng.uniform(0.95, 1.05)), float(rng.uniform(-5, 5))
        heading = float(rng.uniform(0, 2 * math.pi))
        path = [Waypoint(0, x, y, scale, angle)]
        for t in range(step, n - 1 + step, step):
            t = min(t, n - 1)
            frames = t - path[-1].frame
            heading += float(rng.uniform(-math.pi / 2, math.pi / 2))
            distance = speed * u * frames * rng.uniform(0.6, 1.0)
            x = float(np.clip(x + distance * np.cos(heading), lo_x, hi_x))
            y = float(np.clip(y + distance * np.sin(heading), lo_y, hi_y))
            share = frames / step  # the last segment may be shorter
            scale = float(np.clip(scale + rng.uniform(-0.06, 0.06) * share, 0.9, 1.1))
            angle = float(np.clip(angle + rng.uniform(-6, 6) * share, -12, 12))
            path.append(Waypoint(t, x, y, scale, angle))
        objects.append(ObjectSpec(photo, shape, size, tuple(path)))
    return tuple(objects), ()


@dataclass(frozen=True)
class Scenario:
    """A named scenario: how its objects are laid out, over which footage, how long."""

    layout: Callable[..., Layout]  # (rng, unit, frames, width, height, **options) -> layout
    background: str  # one of BACKGROUND_VIDEOS
    background_starts: int  # the seed picks the first video frame in [0, this)
    frames: int  # default length
    min_frames: int = 1


SCENARIOS: dict[str, Scenario] = {
    'translation': Scenario(_translation, 'vtest.avi', 200, 30, min_frames=2),
    'occlusion': Scenario(_occlusion, 'tree.avi', 20, 60, min_frames=24),
    'crossing': Scenario(_crossing, 'vtest.avi', 300, 48, min_frames=24),
    'exit_reentry': Scenario(_exit_reentry, 'Megamind.avi', 150, 60, min_frames=12),
    'moderate_motion': Scenario(_moderate_motion, 'vtest.avi', 400, 60),
}


def scenario(
    name: str,
    num_frames: int | None = None,
    width: int = 640,
    height: int = 480,
    seed: int = 0,
    data_dir: str | Path | None = None,
    **options,
) -> Sequence:
    """Generate the scenario `name` (see SCENARIOS) at any size; the layout scales with it.

    The seed varies the layout and the footage's start. `options` go to the layout (e.g.
    speed for translation, num_objects and speed for moderate_motion). Raises ValueError for
    an unknown name, too few frames, or options the layout cannot meet.
    """
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario '{name}'; use one of {', '.join(SCENARIOS)}")
    spec = SCENARIOS[name]
    n = spec.frames if num_frames is None else num_frames
    if n < spec.min_frames:
        raise ValueError(f'scenario {name} needs at least {spec.min_frames} frames, got {n}')
    rng = np.random.default_rng(seed)
    objects, occluders = spec.layout(rng, _unit(width, height), n, width, height, **options)
    start = int(rng.integers(0, spec.background_starts))
    sequence = SequenceSpec(
        objects, n, width, height, spec.background, occluders, seed=seed, background_start=start
    )
    return generate(sequence, data_dir)
