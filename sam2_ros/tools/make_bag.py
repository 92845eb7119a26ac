"""sam2_make_bag: write a rosbag2 of camera images from a video, an image folder or a scene.

Sources:
- `--video FILE`: any video OpenCV reads; stamps follow the file's frame rate.
- `--images DIR`: the folder's .png/.jpg/.jpeg/.bmp files in name order, at `--fps`.
- `--scenario NAME`: a semi-synthetic sequence (real objects moving over real footage from
  Debian's opencv-doc, generated textures without it) with exact ground truth, stored in the
  same bag on /ground_truth/objects as sam2_ros/TrackedObjectArray (one message per image,
  same header stamp; every object on every frame, `visibility` = its visible fraction, state
  LOST when hidden). `--prompt-script FILE` also writes a prompt script that boxes each
  object on the first frame where most of it is visible.

With `--depth` (scenarios only), a depth image aligned to the colour image goes with each
frame, rendered from the scene's known geometry and the camera intrinsics (`16UC1` millimetres
or `--depth-encoding 32FC1` metres; `--depth-noise sensor` adds noise, holes and flying
pixels), on `--depth-topic` with its CameraInfo on the sibling `camera_info` topic; the
ground-truth objects then carry their exact 3D centre and extent (`has_3d`, `position`,
`box_center`, `box_size`). Depth is written before its image, as a camera driver that aligns
depth to colour publishes both.

Each image comes with a CameraInfo of the same header (a calibration YAML with
`--camera-info`, as camera_calibration writes it, or nominal intrinsics: focal length = image
width, principal point at the centre, no distortion). Stamps start at `--start-time` (UNIX
seconds; default now) and log times equal them, as `ros2 bag record` of a live camera gives.
mcap by default, sqlite3 with `--storage sqlite3`; images raw (bgr8) or `--compressed
jpeg|png` (CompressedImage on <topic>/compressed, as image_transport names it).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
import sys
import time

import cv2
import numpy as np
import yaml

from sam2_ros.core.rle import encode_rle
from sam2_ros.evaluation.synthetic import SCENARIOS
from sam2_ros.tools.bag_io import GROUND_TRUTH_TOPIC, BagError, BagWriter, qos_profile, typestore
from sam2_ros.tools.cli import nonnegative_float, ros_name, ros_name_problem
from sam2_ros.tools.prompt_script import dump_prompt_script

IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp')


@dataclass
class Source:
    """Frames to write: RGB arrays, their rate, optional ground truth, a description."""

    frames: Iterator[np.ndarray]
    fps: float
    description: str
    truth: list | None = None  # per frame {gt_id: synthetic.ObjectTruth}
    sequence: object | None = None  # the synthetic.Sequence of a scenario (its geometry)


@dataclass(frozen=True)
class DepthOptions:
    """Aligned depth for a scenario bag: where, how encoded, how noisy."""

    topic: str = '/camera/depth/image_raw'
    encoding: str = '16UC1'  # or 32FC1
    noise: str = 'none'  # or sensor
    seed: int = 0

    @property
    def info_topic(self) -> str:
        """The depth CameraInfo topic: `camera_info` next to the depth image topic."""
        return self.topic.rsplit('/', 1)[0] + '/camera_info'


# A RealSense-like sensor: 2 mm noise at 1 m, flying pixels at edges, 1 mm steps, 10 % holes.
SENSOR_NOISE = dict(sigma_at_1m=0.002, flying=0.5, edge_px=2, quantisation_m=0.001, holes=0.1)


def video_source(path: Path, start: int, count: int, size, fps: float | None) -> Source:
    """Open a video file; raise BagError when OpenCV cannot read it."""
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise BagError(f'{path}: OpenCV cannot open this video')
    rate = fps or capture.get(cv2.CAP_PROP_FPS) or 0.0
    if not 0 < rate < 1000:
        raise BagError(f'{path}: the video has no usable frame rate; give --fps')
    if start:
        capture.set(cv2.CAP_PROP_POS_FRAMES, start)

    def frames() -> Iterator[np.ndarray]:
        written = 0
        try:
            while count <= 0 or written < count:
                ok, bgr = capture.read()
                if not ok:
                    break
                written += 1
                yield _resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), size)
        finally:
            capture.release()

    return Source(frames(), rate, f'video {path} from frame {start}')


def image_folder_source(path: Path, start: int, count: int, size, fps: float) -> Source:
    """List a folder's images in name order; raise BagError when there are none."""
    if not path.is_dir():
        raise BagError(f'{path}: not a directory')
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    files = files[start:] if count <= 0 else files[start : start + count]
    if not files:
        raise BagError(f'{path}: no {"/".join(IMAGE_SUFFIXES)} images from index {start}')

    def frames() -> Iterator[np.ndarray]:
        first_shape = None
        for file in files:
            bgr = cv2.imread(str(file), cv2.IMREAD_COLOR)
            if bgr is None:
                raise BagError(f'{file}: not a readable image')
            rgb = _resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), size)
            if first_shape is None:
                first_shape = rgb.shape
            elif rgb.shape != first_shape:
                raise BagError(
                    f'{file}: {rgb.shape[1]}x{rgb.shape[0]} differs from the first image '
                    f'({first_shape[1]}x{first_shape[0]}); give --width and --height'
                )
            yield rgb

    return Source(frames(), fps, f'{len(files)} images from {path}')


def scenario_source(name: str, count: int, size, fps: float, seed: int) -> Source:
    """Generate a semi-synthetic scenario with ground truth."""
    from sam2_ros.evaluation import synthetic

    width, height = size or (640, 480)
    kwargs = {'width': width, 'height': height, 'seed': seed}
    if count > 0:
        kwargs['num_frames'] = count
    try:
        sequence = synthetic.scenario(name, **kwargs)
    except ValueError as error:
        raise BagError(f'scenario {name}: {error}') from None
    return Source(
        iter(sequence.frames),
        fps,
        f'semi-synthetic scenario {name} (seed {seed}, {sequence.source} assets)',
        sequence.truth,
        sequence,
    )


def _resize(rgb: np.ndarray, size) -> np.ndarray:
    if size is None or (rgb.shape[1], rgb.shape[0]) == tuple(size):
        return rgb
    return cv2.resize(rgb, tuple(size), interpolation=cv2.INTER_AREA)


def load_camera_info(path: Path) -> dict:
    """Read a camera_calibration YAML (image_width, camera_matrix, distortion_*, ...)."""
    try:
        data = yaml.safe_load(path.read_text())
        info = {
            'width': int(data['image_width']),
            'height': int(data['image_height']),
            'distortion_model': str(data.get('distortion_model', 'plumb_bob')),
            'd': [float(v) for v in data['distortion_coefficients']['data']],
            'k': [float(v) for v in data['camera_matrix']['data']],
            'r': [float(v) for v in data['rectification_matrix']['data']],
            'p': [float(v) for v in data['projection_matrix']['data']],
        }
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError) as error:
        raise BagError(f'{path}: not a camera calibration file: {error}') from None
    if len(info['k']) != 9 or len(info['r']) != 9 or len(info['p']) != 12:
        raise BagError(
            f'{path}: camera_matrix, rectification_matrix and projection_matrix '
            'need 9, 9 and 12 values'
        )
    return info


def nominal_camera_info(width: int, height: int) -> dict:
    """Return pinhole intrinsics with focal length = width and the centre as principal point."""
    f, cx, cy = float(width), width / 2.0, height / 2.0
    return {
        'width': width,
        'height': height,
        'distortion_model': 'plumb_bob',
        'd': [0.0] * 5,
        'k': [f, 0.0, cx, 0.0, f, cy, 0.0, 0.0, 1.0],
        'r': [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        'p': [f, 0.0, cx, 0.0, 0.0, f, cy, 0.0, 0.0, 0.0, 1.0, 0.0],
    }


class _Messages:
    """Builders of rosbags messages from the type store."""

    def __init__(self) -> None:
        self.types = typestore().types

    def header(self, stamp_ns: int, frame_id: str):
        time_type = self.types['builtin_interfaces/msg/Time']
        stamp = time_type(sec=stamp_ns // 1_000_000_000, nanosec=stamp_ns % 1_000_000_000)
        return self.types['std_msgs/msg/Header'](stamp=stamp, frame_id=frame_id)

    def image(self, rgb: np.ndarray, header):
        bgr = np.ascontiguousarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        return self.types['sensor_msgs/msg/Image'](
            header=header,
            height=bgr.shape[0],
            width=bgr.shape[1],
            encoding='bgr8',
            is_bigendian=0,
            step=bgr.shape[1] * 3,
            data=bgr.reshape(-1),
        )

    def compressed(self, rgb: np.ndarray, header, fmt: str):
        ok, data = cv2.imencode(f'.{fmt}', cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        if not ok:
            raise BagError(f'OpenCV could not encode a frame as {fmt}')
        return self.types['sensor_msgs/msg/CompressedImage'](
            header=header,
            format=f'bgr8; {fmt} compressed bgr8',
            data=data.reshape(-1),
        )

    def camera_info(self, info: dict, header):
        roi = self.types['sensor_msgs/msg/RegionOfInterest'](
            x_offset=0, y_offset=0, height=0, width=0, do_rectify=False
        )
        return self.types['sensor_msgs/msg/CameraInfo'](
            header=header,
            height=info['height'],
            width=info['width'],
            distortion_model=info['distortion_model'],
            d=np.array(info['d'], dtype=np.float64),
            k=np.array(info['k'], dtype=np.float64),
            r=np.array(info['r'], dtype=np.float64),
            p=np.array(info['p'], dtype=np.float64),
            binning_x=0,
            binning_y=0,
            roi=roi,
        )

    def depth(self, metres: np.ndarray, header, encoding: str):
        """Build a depth Image (16UC1 millimetres or 32FC1 metres, NaN for no depth)."""
        from sam2_ros.core.depth import metres_to_millimetres

        if encoding == '16UC1':
            data = metres_to_millimetres(metres)
        else:
            data = np.ascontiguousarray(metres, dtype='<f4')
        return self.types['sensor_msgs/msg/Image'](
            header=header,
            height=data.shape[0],
            width=data.shape[1],
            encoding=encoding,
            is_bigendian=0,
            step=data.shape[1] * data.itemsize,
            data=data.view(np.uint8).reshape(-1),
        )

    def ground_truth(self, frame_truth: dict, header, shape, truth_3d: dict | None = None):
        """Build a TrackedObjectArray holding every ground-truth object of one frame."""
        objects = []
        for gt_id, truth in sorted(frame_truth.items()):
            rle = encode_rle(truth.mask)
            x0, y0, x1, y1 = truth.box if truth.box is not None else (0, 0, 0, 0)
            rows, cols = np.nonzero(truth.mask)
            objects.append(
                self.types['sam2_ros/msg/TrackedObject'](
                    id=gt_id,
                    label=truth.class_name,
                    class_id=truth.class_id,
                    class_name=truth.class_name,
                    state=0 if truth.visible else 3,
                    score=1.0,
                    visibility=float(truth.visible_fraction),
                    propagation_confidence=1.0,
                    bbox=self.types['sensor_msgs/msg/RegionOfInterest'](
                        x_offset=x0, y_offset=y0, height=y1 - y0, width=x1 - x0, do_rectify=False
                    ),
                    centroid_x=float(cols.mean() + 0.5) if cols.size else float('nan'),
                    centroid_y=float(rows.mean() + 0.5) if rows.size else float('nan'),
                    area=int(rows.size),
                    mask=self.types['sam2_ros/msg/Mask'](
                        height=rle.height, width=rle.width, counts=rle.counts.astype(np.uint32)
                    ),
                    frames_since_keyframe=0,
                    keyframe_stamp=header.stamp,
                    keyframe_age_ms=0.0,  # ground truth is exact on every frame
                    reanchor_count=0,
                    **self._truth_3d(truth_3d, gt_id),
                )
            )
        return self.types['sam2_ros/msg/TrackedObjectArray'](
            header=header,
            image_height=shape[0],
            image_width=shape[1],
            is_keyframe=True,
            keyframe_reasons=['ground_truth'],
            objects=objects,
        )

    def _truth_3d(self, truth_3d: dict | None, gt_id: int) -> dict:
        """Return the 3D fields of a ground-truth object (all zero when it has none)."""
        point, vector = (
            self.types['geometry_msgs/msg/Point'],
            self.types['geometry_msgs/msg/Vector3'],
        )
        truth = (truth_3d or {}).get(gt_id)
        if truth is None:
            zero = point(x=0.0, y=0.0, z=0.0)
            return dict(
                has_3d=False,
                position=zero,
                box_center=zero,
                box_size=vector(x=0.0, y=0.0, z=0.0),
                depth_points=0,
                depth_coverage=0.0,
                depth_reason='' if truth_3d is None else 'not visible',
            )
        centre = point(x=truth.centre[0], y=truth.centre[1], z=truth.centre[2])
        return dict(
            has_3d=True,
            position=centre,
            box_center=point(x=truth.box_centre[0], y=truth.box_centre[1], z=truth.box_centre[2]),
            box_size=vector(x=truth.size[0], y=truth.size[1], z=truth.size[2]),
            depth_points=truth.points,
            depth_coverage=1.0,
            depth_reason='',
        )


def first_box_prompts(truth: list, min_visible: float = 0.5) -> list:
    """Return prompt-script events boxing each object where it first is mostly visible."""
    events = []
    for gt_id in sorted({g for frame in truth for g in frame}):
        for index, frame in enumerate(truth):
            entry = frame.get(gt_id)
            if (
                entry is not None
                and entry.box is not None
                and entry.visible_fraction >= min_visible
            ):
                x0, y0, x1, y1 = (int(v) for v in entry.box)
                add = {
                    'name': f'{entry.class_name}_{gt_id}',
                    'label': entry.class_name,
                    'box': [x0, y0, x1, y1],
                    'ground_truth': gt_id,
                }
                events.append({'frame': index, 'add': add})
                break
    return sorted(events, key=lambda e: e['frame'])


@dataclass
class BagSummary:
    """What make_bag wrote."""

    path: Path
    frames: int
    width: int
    height: int
    fps: float
    image_topic: str
    camera_info_topic: str
    ground_truth: bool
    description: str


def make_bag(
    output: Path,
    source: Source,
    *,
    image_topic: str = '/camera/image_raw',
    camera_info_topic: str = '/camera/camera_info',
    frame_id: str = 'camera_optical_frame',
    compressed: str = '',
    storage: str = 'mcap',
    version: int = 9,
    start_time_ns: int | None = None,
    camera_info: dict | None = None,
    overwrite: bool = False,
    progress=None,
    depth: DepthOptions | None = None,
) -> BagSummary:
    """Write `source` to a new bag at `output`; return what was written."""
    if depth is not None and source.sequence is None:
        raise BagError('depth can be rendered only for a scenario (--depth needs --scenario)')
    for name in (image_topic, camera_info_topic):
        problem = ros_name_problem(name)
        if problem:
            raise BagError(f'topic {name!r} is not a valid ROS name: {problem}')
    build = _Messages()
    rendered = None
    start_ns = time.time_ns() if start_time_ns is None else int(start_time_ns)
    period_ns = 1e9 / source.fps
    topic = f'{image_topic}/compressed' if compressed else image_topic
    image_type = 'sensor_msgs/msg/CompressedImage' if compressed else 'sensor_msgs/msg/Image'
    count, shape = 0, None
    with BagWriter(output, storage, version, overwrite) as writer:
        writer.set_custom_data('source', source.description)
        writer.add_topic(topic, image_type, qos_profile('reliable'))
        writer.add_topic(camera_info_topic, 'sensor_msgs/msg/CameraInfo', qos_profile('reliable'))
        if depth is not None:
            writer.add_topic(depth.topic, 'sensor_msgs/msg/Image', qos_profile('reliable'))
            writer.add_topic(
                depth.info_topic, 'sensor_msgs/msg/CameraInfo', qos_profile('reliable')
            )
        if source.truth is not None:
            writer.add_topic(GROUND_TRUTH_TOPIC, 'sam2_ros/msg/TrackedObjectArray')
            writer.set_custom_data('ground_truth_topic', GROUND_TRUTH_TOPIC)
        for index, rgb in enumerate(source.frames):
            if shape is None:
                shape = rgb.shape[:2]
                info = camera_info or nominal_camera_info(shape[1], shape[0])
                if (info['width'], info['height']) != (shape[1], shape[0]):
                    raise BagError(
                        f'the calibration is for {info["width"]}x{info["height"]} images, the '
                        f'frames are {shape[1]}x{shape[0]}'
                    )
                if depth is not None:
                    rendered = render_scenario_depth(source.sequence, info, depth)
            stamp_ns = start_ns + round(index * period_ns)
            header = build.header(stamp_ns, frame_id)
            writer.write(
                camera_info_topic,
                stamp_ns,
                build.camera_info(info, header),
                'sensor_msgs/msg/CameraInfo',
            )
            if rendered is not None:
                depth_info = build.camera_info(info, header)
                writer.write(depth.info_topic, stamp_ns, depth_info, 'sensor_msgs/msg/CameraInfo')
                depth_image = build.depth(rendered.depth[index], header, depth.encoding)
                writer.write(depth.topic, stamp_ns, depth_image, 'sensor_msgs/msg/Image')
            image = (
                build.compressed(rgb, header, compressed)
                if compressed
                else build.image(rgb, header)
            )
            writer.write(topic, stamp_ns, image, image_type)
            if source.truth is not None:
                truth_3d = rendered.truth[index] if rendered is not None else None
                gt = build.ground_truth(source.truth[index], header, shape, truth_3d)
                writer.write(GROUND_TRUTH_TOPIC, stamp_ns, gt, 'sam2_ros/msg/TrackedObjectArray')
            count += 1
            if progress is not None:
                progress(count)
    if count == 0:
        raise BagError(f'{source.description}: no frames to write')
    return BagSummary(
        output,
        count,
        shape[1],
        shape[0],
        source.fps,
        topic,
        camera_info_topic,
        source.truth is not None,
        source.description,
    )


def render_scenario_depth(sequence, info: dict, options: DepthOptions):
    """Render a scenario's depth with the bag's camera intrinsics."""
    from sam2_ros.core.depth import Intrinsics
    from sam2_ros.evaluation.synthetic_depth import DepthNoise, render_depth

    if options.encoding not in ('16UC1', '32FC1'):
        raise BagError(f'depth encoding must be 16UC1 or 32FC1, got {options.encoding}')
    noise = DepthNoise(**SENSOR_NOISE) if options.noise == 'sensor' else DepthNoise()
    camera = Intrinsics.from_k(info['k'], info['width'], info['height'])
    return render_depth(sequence, noise=noise, seed=options.seed, intrinsics=camera)


def _parse_args(argv):
    parser = argparse.ArgumentParser(
        prog='sam2_make_bag',
        description='Write a rosbag2 (mcap or sqlite3) of Image/CompressedImage and CameraInfo '
        'messages from a video, an image folder or a semi-synthetic scene with ground truth.',
    )
    parser.add_argument('output', type=Path, help='bag directory to create')
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument('--video', type=Path, help='a video file OpenCV can read')
    source.add_argument('--images', type=Path, help='a folder of images, in name order')
    source.add_argument(
        '--scenario', choices=tuple(SCENARIOS), help='semi-synthetic, with ground truth'
    )
    parser.add_argument('--frames', type=int, default=0, help='at most this many (0 = all)')
    parser.add_argument('--start', type=int, default=0, help='first video frame or image index')
    parser.add_argument(
        '--fps',
        type=nonnegative_float,
        default=0.0,
        help="frame rate (default: the video's, else 10)",
    )
    parser.add_argument('--width', type=int, default=0, help='resize to this width')
    parser.add_argument('--height', type=int, default=0, help='resize to this height')
    parser.add_argument('--seed', type=int, default=0, help='scenario seed (0)')
    parser.add_argument('--topic', type=ros_name, default='/camera/image_raw', help='image topic')
    parser.add_argument('--camera-info-topic', type=ros_name, default='/camera/camera_info')
    parser.add_argument('--frame-id', default='camera_optical_frame', help='header frame_id')
    parser.add_argument(
        '--compressed',
        choices=('jpeg', 'png'),
        default='',
        help='write CompressedImage on <topic>/compressed',
    )
    parser.add_argument('--camera-info', type=Path, help='camera_calibration YAML')
    parser.add_argument(
        '--depth',
        action='store_true',
        help='with --scenario: also write aligned depth and its CameraInfo',
    )
    parser.add_argument('--depth-topic', default=DepthOptions.topic, help='depth image topic')
    parser.add_argument('--depth-encoding', choices=('16UC1', '32FC1'), default='16UC1')
    parser.add_argument(
        '--depth-noise',
        choices=('none', 'sensor'),
        default='none',
        help='sensor: noise, 10 %% holes, flying pixels at edges, 1 mm steps',
    )
    parser.add_argument('--storage', choices=('mcap', 'sqlite3'), default='mcap')
    parser.add_argument(
        '--bag-version',
        type=int,
        choices=(8, 9),
        default=9,
        help='rosbag2 metadata version: 9 (Jazzy and newer) or 8 (Humble)',
    )
    parser.add_argument(
        '--start-time',
        type=nonnegative_float,
        default=None,
        help='stamp of the first image, UNIX seconds (default: now)',
    )
    parser.add_argument(
        '--prompt-script',
        type=Path,
        help='with --scenario: also write a prompt script boxing each object',
    )
    parser.add_argument('--overwrite', action='store_true', help='replace an existing bag')
    args = parser.parse_args(argv)
    if (args.width > 0) != (args.height > 0):
        parser.error('--width and --height go together')
    if args.frames < 0 or args.start < 0:
        parser.error('--frames and --start must not be negative')
    if args.start_time is not None and args.start_time >= 2**31:
        parser.error(f'--start-time {args.start_time:g} is past 2038: stamps hold int32 seconds')
    if args.depth and not args.scenario:
        parser.error('--depth needs --scenario (depth is rendered from the scene geometry)')
    if args.prompt_script and not args.scenario:
        parser.error('--prompt-script needs --scenario (the boxes come from the ground truth)')
    if args.prompt_script and not args.prompt_script.resolve().parent.is_dir():
        parser.error(f'--prompt-script {args.prompt_script}: its folder does not exist')
    return args


def main(argv=None) -> int:
    """Write the bag; print a summary, or one line saying why not (exit code 1)."""
    args = _parse_args(argv)
    size = (args.width, args.height) if args.width else None
    try:
        if args.video:
            src = video_source(args.video, args.start, args.frames, size, args.fps or None)
        elif args.images:
            src = image_folder_source(args.images, args.start, args.frames, size, args.fps or 10)
        else:
            src = scenario_source(args.scenario, args.frames, size, args.fps or 10, args.seed)
        info = load_camera_info(args.camera_info) if args.camera_info else None
        start = None if args.start_time is None else round(args.start_time * 1e9)
        summary = make_bag(
            args.output,
            src,
            image_topic=args.topic,
            camera_info_topic=args.camera_info_topic,
            frame_id=args.frame_id,
            compressed=args.compressed,
            storage=args.storage,
            version=args.bag_version,
            start_time_ns=start,
            camera_info=info,
            overwrite=args.overwrite,
            depth=(
                DepthOptions(args.depth_topic, args.depth_encoding, args.depth_noise, args.seed)
                if args.depth
                else None
            ),
        )
        print(
            f'sam2_make_bag: wrote {summary.path} ({args.storage}): {summary.frames} frames '
            f'{summary.width}x{summary.height} at {summary.fps:g} fps on {summary.image_topic} '
            f'and {summary.camera_info_topic}'
            + (f', depth on {args.depth_topic}' if args.depth else '')
            + (f', ground truth on {GROUND_TRUTH_TOPIC}' if summary.ground_truth else '')
            + f'; source: {summary.description}'
        )
        if args.prompt_script:
            events = first_box_prompts(src.truth)
            text = dump_prompt_script(
                events,
                f'Prompt script for {summary.path}: a box around each ground-truth object '
                'where it first is mostly visible.',
            )
            try:
                args.prompt_script.write_text(text)
            except OSError as error:
                message = f'cannot write the prompt script {args.prompt_script}: {error}'
                raise BagError(message) from None
            print(f'sam2_make_bag: wrote {args.prompt_script} ({len(events)} prompts)')
    except BagError as error:
        print(f'sam2_make_bag: error: {error}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
