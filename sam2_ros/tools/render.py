"""sam2_render: an overlay video (MP4) of a run, from the input bag and the recorded outputs.

Every image of the input bag becomes a frame: the node's masks, contours, ids, labels and
states for that image (the tracked_objects answer with the same header stamp) drawn as the
node's own overlay draws them, or "no answer" when the node dropped or never answered it.
A LOST object is drawn as its last box, dashed, marked LOST. The video is written to a
temporary file next to the output and renamed only when complete, so a failed run leaves
nothing half-written; an existing output is replaced only with --overwrite.
A banner says when the run used untrained weights (from the recorded /diagnostics), so a
video of random masks is never mistaken for a result.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
import sys

import cv2
import numpy as np

from sam2_ros.core.overlay import render_overlay
from sam2_ros.core.palette import object_color
from sam2_ros.core.stamps import stamp_ns
from sam2_ros.core.tracking_types import TrackState
from sam2_ros.ros.conversions import msg_to_frame_result
from sam2_ros.ros.image_conversion import (
    ImageConversionError,
    compressed_msg_to_rgb,
    image_msg_to_rgb,
)
from sam2_ros.tools.bag_io import IMAGE_TYPES, BagError, BagReader
from sam2_ros.tools.cli import positive_float
from sam2_ros.tools.evaluate import load_run

UNTRAINED_BANNER = 'UNTRAINED WEIGHTS - masks are meaningless'
DASH_PX, GAP_PX = 6, 8  # dashes of LOST boxes; the gap allows for the line's round caps


def _dashed_box(canvas: np.ndarray, box, color) -> None:
    x0, y0, x1, y1 = (int(v) for v in box)
    corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    for (ax, ay), (bx, by) in zip(corners, corners[1:] + corners[:1], strict=True):
        length = max(abs(bx - ax), abs(by - ay))
        for start in range(0, length, DASH_PX + GAP_PX):
            end = min(start + DASH_PX, length)
            p = (ax + (bx - ax) * start // length, ay + (by - ay) * start // length)
            q = (ax + (bx - ax) * end // length, ay + (by - ay) * end // length)
            cv2.line(canvas, p, q, color, 2, cv2.LINE_AA)


def _draw_lost(canvas: np.ndarray, result, last_boxes: dict) -> None:
    """Remember each object's latest box; draw LOST objects as that box, dashed."""
    for obj in result.objects:
        if obj.state != TrackState.LOST:
            if obj.box is not None:
                last_boxes[obj.obj_id] = obj.box
            continue
        box = last_boxes.get(obj.obj_id)
        if box is None:
            continue
        color = object_color(obj.obj_id)
        _dashed_box(canvas, box, color)
        text = f'{obj.obj_id} {obj.label or obj.class_name} LOST'.replace('  ', ' ')
        org = (int(box[0]), max(12, int(box[1]) - 4))
        cv2.putText(canvas, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(canvas, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.45, color, 1, cv2.LINE_AA)


def _banner(canvas: np.ndarray, text: str, color) -> None:
    scale = 0.55 * min(1.0, canvas.shape[1] / 560)  # the untrained banner fits 320 px
    height = int(8 + 32 * scale)
    cv2.rectangle(canvas, (0, 0), (canvas.shape[1], height), (0, 0, 0), thickness=-1)
    cv2.putText(
        canvas, text, (6, height - 8), cv2.FONT_HERSHEY_SIMPLEX, scale, color, 1, cv2.LINE_AA
    )


def render_video(
    input_bag: str | Path,
    output_bag: str | Path,
    video: str | Path,
    fps: float = 0.0,
    banner: str = '',
    progress=None,
    overwrite: bool = False,
) -> int:
    """Write the overlay video; return the number of frames. Raise BagError on bad input.

    `fps` 0 means the bag's own rate. Nothing is left at `video` unless rendering completed.
    """
    video = Path(video)
    if video.is_dir():
        raise BagError(f'{video} is a directory, not a video file')
    if video.exists() and not overwrite:
        raise BagError(f'{video} exists; pass --overwrite to replace it')
    if not video.resolve().parent.is_dir():
        raise BagError(f'{video}: its folder does not exist')
    partial = video.with_name(f'.{video.stem}.partial{video.suffix or ".mp4"}')
    try:
        frames = _render(input_bag, output_bag, partial, fps, banner, progress)
        os.replace(partial, video)
    finally:
        partial.unlink(missing_ok=True)
    return frames


def _render(input_bag, output_bag, video: Path, fps: float, banner: str, progress) -> int:
    run = load_run(output_bag)
    untrained = run.untrained is True
    writer = None
    frames = 0
    last_boxes: dict[int, tuple] = {}
    with BagReader(input_bag) as reader:
        images = [t for t, m in sorted(reader.topics.items()) if m in IMAGE_TYPES]
        if len(images) != 1:
            raise BagError(f'{reader.path}: expected one image topic, found {images or "none"}')
        total = reader.message_counts[images[0]]
        if not fps:
            duration_s = max(reader.duration_ns / 1e9, 1e-9)
            fps = min(60.0, max(1.0, (total - 1) / duration_s)) if total > 1 else 10.0
        try:
            for message in reader.messages(images):
                msg = message.msg
                if message.msgtype.endswith('CompressedImage'):
                    rgb = compressed_msg_to_rgb(msg)
                else:
                    rgb = image_msg_to_rgb(msg)
                answer = run.answers.get(stamp_ns(msg.header.stamp))
                if answer is not None:
                    result = msg_to_frame_result(answer)
                    canvas = render_overlay(rgb, result)
                    _draw_lost(canvas, result, last_boxes)
                else:
                    canvas = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
                    cv2.putText(
                        canvas,
                        'no answer from the node',
                        (8, canvas.shape[0] - 30),
                        cv2.FONT_HERSHEY_SIMPLEX,
                        0.5,
                        (0, 0, 255),
                        1,
                        cv2.LINE_AA,
                    )
                if untrained:
                    _banner(canvas, UNTRAINED_BANNER, (0, 0, 255))
                elif banner:
                    _banner(canvas, banner, (255, 255, 255))
                if writer is None:
                    writer = _open_video(video, fps, canvas.shape[1], canvas.shape[0])
                writer.write(canvas)
                frames += 1
                if progress is not None:
                    progress(frames, total)
        except ImageConversionError as error:
            raise BagError(f'{reader.path}: image {frames} cannot be decoded: {error}') from None
        finally:
            if writer is not None:
                writer.release()
    if frames == 0:
        raise BagError(f'{input_bag}: no images to render')
    return frames


def _open_video(path: str | Path, fps: float, width: int, height: int):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'mp4v'), fps, (width, height))
    if not writer.isOpened():
        raise BagError(f'{path}: OpenCV cannot write an MP4 video here')
    return writer


def main(argv=None) -> int:
    """Render; exit 1 with one line on errors."""
    parser = argparse.ArgumentParser(
        prog='sam2_render',
        description='Render an MP4 overlay video from an input bag and the bag recorded by '
        'sam2_replay --record.',
    )
    parser.add_argument('input_bag', type=Path, help='the bag that was replayed')
    parser.add_argument('output_bag', type=Path, help='the recorded outputs')
    parser.add_argument('video', type=Path, help='the MP4 file to write')
    parser.add_argument(
        '--fps', type=positive_float, default=0.0, help="video rate (default: the bag's)"
    )
    parser.add_argument('--banner', default='', help='a line of text across the top')
    parser.add_argument('--overwrite', action='store_true', help='replace an existing video')
    args = parser.parse_args(argv)
    try:
        frames = render_video(
            args.input_bag,
            args.output_bag,
            args.video,
            args.fps,
            args.banner,
            overwrite=args.overwrite,
        )
    except BagError as error:
        print(f'sam2_render: error: {error}', file=sys.stderr)
        return 1
    print(f'sam2_render: wrote {args.video} ({frames} frames)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
