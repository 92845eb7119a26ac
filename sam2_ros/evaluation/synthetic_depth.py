"""Depth images with exact 3D ground truth for the semi-synthetic sequences.

The scene behind a `synthetic.Sequence` gets a geometry: every object is a flat card, turned
by a known slope, whose centre lies at a known distance on the ray through its centre pixel;
occluder bars are flat and nearer than every object; the background is a plane seen at an
angle (a floor or wall). Depth is rendered per pixel from that geometry and the camera
intrinsics (by default make_bag's nominal camera: focal length = image width, principal point
at the centre), so it agrees with the drawn masks pixel for pixel.

Per frame and object, the ground truth is the 3D centre (mean of the visible surface points)
and the axis-aligned extent of those points, in the camera optical frame (x right, y down,
z forward), metres.

`DepthNoise` makes the depth sensor-like: depth-dependent Gaussian noise, flying pixels in
a band at depth edges (a depth between the two surfaces), quantisation, and holes in blobs.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from sam2_ros.core.depth import Intrinsics
from sam2_ros.evaluation.synthetic import Sequence, occluder_box


@dataclass(frozen=True)
class DepthScene:
    """Where things are: distances in metres along the camera's z axis."""

    object_distances_m: tuple[float, ...] = ()  # per ground-truth id; empty: spread by order
    near_m: float = 0.6  # with no distances given: the front-most object's distance
    far_m: float = 2.5  # ... and the rearmost one's
    object_slope: tuple[float, float] = (0.3, 0.0)  # dZ/dX, dZ/dY of every card
    background_m: float = 4.0  # background plane distance on the optical axis
    background_slope: tuple[float, float] = (0.0, -0.4)  # its dZ/dX, dZ/dY
    occluder_m: float | None = None  # default: 80 % of the nearest object's distance
    focal_px: float | None = None  # default: the image width


@dataclass(frozen=True)
class DepthNoise:
    """A sensor-like noise model; the defaults add nothing."""

    sigma_at_1m: float = 0.0  # Gaussian noise std at 1 m, metres; grows with z squared
    flying: float = 0.0  # share of pixels near a depth edge that take an in-between depth
    edge_px: int = 2  # width of the flying band on each side of a depth edge
    edge_jump_m: float = 0.05  # depth step that counts as an edge
    quantisation_m: float = 0.0  # depths rounded to multiples of this (0: not rounded)
    holes: float = 0.0  # share of pixels without depth (0 in 16UC1, NaN in 32FC1)
    hole_size_px: int = 3  # holes come in blobs about this big


@dataclass(frozen=True)
class Object3DTruth:
    """The exact 3D centre and extent of an object's visible surface on one frame."""

    centre: tuple[float, float, float]  # mean of the visible surface points
    box_centre: tuple[float, float, float]  # centre of their axis-aligned box
    size: tuple[float, float, float]  # edge lengths of that box
    points: int  # visible pixels behind them


@dataclass
class DepthSequence:
    """Depth frames for a sequence: float32 metres, NaN where there is no depth."""

    depth: list[np.ndarray]  # with the noise model applied
    clean: list[np.ndarray]  # noiseless
    intrinsics: Intrinsics
    truth: list[dict[int, Object3DTruth]]  # per frame: visible objects only
    distances_m: tuple[float, ...]  # per ground-truth id


def nominal_intrinsics(width: int, height: int, focal_px: float | None = None) -> Intrinsics:
    """Return the nominal pinhole camera of a synthetic sequence (make_bag's CameraInfo)."""
    focal = float(focal_px or width)
    return Intrinsics(width, height, focal, focal, (width - 1) / 2, (height - 1) / 2)


def _distances(sequence: Sequence, scene: DepthScene) -> tuple[float, ...]:
    count = len(sequence.spec.objects)
    if scene.object_distances_m:
        if len(scene.object_distances_m) != count:
            raise ValueError(
                f'{len(scene.object_distances_m)} object distances for {count} objects'
            )
        return tuple(float(d) for d in scene.object_distances_m)
    # Objects drawn later are in front: nearer, in drawing order (depth, then spec order).
    order = sorted(range(count), key=lambda i: sequence.spec.objects[i].depth)
    steps = np.linspace(scene.far_m, scene.near_m, count) if count > 1 else [scene.near_m]
    distances = [0.0] * count
    for rank, index in enumerate(order):
        distances[index] = float(steps[rank])
    return tuple(distances)


def _plane_depth(normalised, anchor: np.ndarray, slope: tuple[float, float]) -> np.ndarray:
    """Depth of the plane Z = Za + a (X - Xa) + b (Y - Ya) along each pixel's ray."""
    xn, yn = normalised
    a, b = slope
    xa, ya, za = anchor
    return (za - a * xa - b * ya) / (1.0 - a * xn - b * yn)


def render_depth(
    sequence: Sequence,
    scene: DepthScene | None = None,
    noise: DepthNoise | None = None,
    seed: int = 0,
    intrinsics: Intrinsics | None = None,
) -> DepthSequence:
    """Render the depth of every frame of `sequence` and the 3D truth of its objects.

    `intrinsics` (default: the nominal camera) must be for the sequence's image size.
    """
    scene = scene or DepthScene()
    noise = noise or DepthNoise()
    width, height = sequence.width, sequence.height
    camera = intrinsics or nominal_intrinsics(width, height, scene.focal_px)
    if (camera.width, camera.height) != (width, height):
        raise ValueError(
            f'intrinsics for {camera.width}x{camera.height} images, the sequence is '
            f'{width}x{height}'
        )
    distances = _distances(sequence, scene)
    occluder_m = scene.occluder_m or 0.8 * min(distances, default=scene.near_m)
    v, u = np.mgrid[0:height, 0:width].astype(np.float64)
    normalised = ((u - camera.cx) / camera.fx, (v - camera.cy) / camera.fy)
    background = _plane_depth(
        normalised, np.array([0.0, 0.0, scene.background_m]), scene.background_slope
    )
    if not (background > 0).all():
        raise ValueError('the background plane passes behind the camera: lower its slope')
    rng = np.random.default_rng(seed)
    depth, clean, truth = [], [], []
    for t, frame_truth in enumerate(sequence.truth):
        z = background.copy()
        for occluder in sequence.spec.occluders:
            x0, y0, x1, y1 = occluder_box(occluder, t)
            z[max(y0, 0) : max(y1, 0), max(x0, 0) : max(x1, 0)] = occluder_m
        objects = {}
        for gt_id, obj in frame_truth.items():
            if not obj.visible:
                continue
            pose = sequence.spec.objects[gt_id - 1].pose(t)
            za = distances[gt_id - 1]
            # The card's centre lies on the ray through the pose's centre pixel.
            anchor = np.array(
                [
                    (pose.x - 0.5 - camera.cx) / camera.fx * za,
                    (pose.y - 0.5 - camera.cy) / camera.fy * za,
                    za,
                ]
            )
            card = _plane_depth(normalised, anchor, scene.object_slope)
            z[obj.mask] = card[obj.mask]
            zs = card[obj.mask]
            points = np.stack(
                [normalised[0][obj.mask] * zs, normalised[1][obj.mask] * zs, zs], axis=1
            )
            lo, hi = points.min(axis=0), points.max(axis=0)
            objects[gt_id] = Object3DTruth(
                tuple(float(c) for c in points.mean(axis=0)),
                tuple(float(c) for c in (lo + hi) / 2),
                tuple(float(s) for s in hi - lo),
                int(zs.size),
            )
        clean_frame = z.astype(np.float32)
        clean.append(clean_frame)
        depth.append(apply_noise(clean_frame, noise, rng))
        truth.append(objects)
    return DepthSequence(depth, clean, camera, truth, distances)


def apply_noise(depth: np.ndarray, noise: DepthNoise, rng: np.random.Generator) -> np.ndarray:
    """Return a noisy copy of a float32 depth image in metres (NaN = no depth)."""
    z = depth.astype(np.float32, copy=True)
    if noise.sigma_at_1m > 0:
        z += rng.normal(0.0, 1.0, z.shape).astype(np.float32) * noise.sigma_at_1m * z * z
    if noise.flying > 0 and noise.edge_px > 0:
        size = 2 * noise.edge_px + 1
        kernel = np.ones((size, size), np.uint8)
        top, bottom = cv2.dilate(depth, kernel), cv2.erode(depth, kernel)
        band = (top - bottom) > noise.edge_jump_m
        fly = band & (rng.random(z.shape) < noise.flying)
        mix = rng.random(int(fly.sum())).astype(np.float32)
        z[fly] = bottom[fly] + mix * (top[fly] - bottom[fly])
    if noise.quantisation_m > 0:
        z = np.round(z / noise.quantisation_m) * np.float32(noise.quantisation_m)
    if noise.holes > 0:
        z[_holes(z.shape, noise.holes, noise.hole_size_px, rng)] = np.nan
    return z


def _holes(shape, share: float, blob_px: int, rng: np.random.Generator) -> np.ndarray:
    """Return a mask of about `share` of the pixels, in blobs of about `blob_px`."""
    height, width = shape
    blob = max(1, blob_px)
    field = rng.random((max(1, height // blob + 1), max(1, width // blob + 1)), np.float32)
    field = cv2.resize(field, (width, height), interpolation=cv2.INTER_LINEAR)
    return field < np.quantile(field, share)
