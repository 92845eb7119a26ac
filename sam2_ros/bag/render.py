"""sam2_render: an overlay video (MP4) of a run, from the input bag and the recorded outputs.

Every image of the input bag becomes a frame: the node's masks, contours, ids, labels and
states for that image (the tracked_objects answer with the same header stamp) drawn as the
node's own overlay draws them, or "no answer" when the node dropped or never answered it.
A banner says when the run used untrained weights (from the recorded /diagnostics), so a
video of random masks is never mistaken for a result.
"""

from __future__ import annotations

import argparse
from pathlib import Path
import sys

import cv2
import numpy as np

from sam2_ros.bag.bag_io import IMAGE_TYPES, BagError, BagReader
from sam2_ros.bag.evaluate import load_run
from sam2_ros.ros.conversions import msg_to_frame_result, render_overlay
from sam2_ros.ros.image_conversion import (
    ImageConversionError,
    compressed_msg_to_rgb,
    image_msg_to_rgb,
)
from sam2_ros.ros.stamps import stamp_ns

UNTRAINED_BANNER = 'UNTRAINED WEIGHTS - masks are meaningless'


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
) -> int:
    """Write the overlay video; return the number of frames. Raise BagError on bad input."""
    run = load_run(output_bag)
    untrained = run.untrained is True
    writer = None
    frames = 0
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
                    canvas = render_overlay(rgb, msg_to_frame_result(answer))
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
    Path(path).parent.mkdir(parents=True, exist_ok=True)
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
    parser.add_argument('--fps', type=float, default=0.0, help="video rate (default: the bag's)")
    parser.add_argument('--banner', default='', help='a line of text across the top')
    args = parser.parse_args(argv)
    if args.fps < 0:
        parser.error('--fps must be >= 0')
    try:
        frames = render_video(args.input_bag, args.output_bag, args.video, args.fps, args.banner)
    except BagError as error:
        print(f'sam2_render: error: {error}', file=sys.stderr)
        return 1
    print(f'sam2_render: wrote {args.video} ({frames} frames)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
