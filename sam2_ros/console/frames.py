"""The console's frames: images paired with their answers, the views sent, the history.

Nothing here imports rclpy: images and answers are duck-typed messages.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
import threading

from sam2_ros.console.protocol import FrameView, ObjectView, Stamp
from sam2_ros.ros.conversions import msg_to_frame_result


class ImagePairing:
    """Input images held by stamp until the tracked_objects of the same stamp arrive.

    The tracker answers frames in order, so an answer for stamp t also settles every image
    stamped before t: those were skipped or are older than the answer and are dropped.
    """

    def __init__(self, size: int) -> None:
        """Hold at most `size` images (the oldest go first)."""
        self._size = size
        self._images: OrderedDict[int, object] = OrderedDict()  # stamp ns -> image message
        self.unpaired = 0  # answers in a row that found no image

    def add(self, stamp: int, image) -> None:
        """Hold an image message under its header stamp (ns)."""
        self._images[stamp] = image
        while len(self._images) > self._size:
            self._images.popitem(last=False)

    def take(self, stamp: int):
        """Return the image of an answer's stamp, or None; forget it and every older one."""
        image = self._images.get(stamp)
        while self._images and next(iter(self._images)) <= stamp:
            self._images.popitem(last=False)
        self.unpaired = 0 if image is not None else self.unpaired + 1
        return image


@dataclass(frozen=True)
class SentFrame:
    """A frame as streamed to browsers: what it showed and its JPEG."""

    view: FrameView
    jpeg: bytes


class FrameHistory:
    """The last frames sent to browsers, by stamp (read by the web thread)."""

    def __init__(self, size: int) -> None:
        """Keep at most `size` frames."""
        self._size = size
        self._frames: OrderedDict[int, SentFrame] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, frame: SentFrame) -> None:
        """Store a frame, forgetting the oldest beyond the size."""
        with self._lock:
            self._frames[frame.view.stamp.ns] = frame
            while len(self._frames) > self._size:
                self._frames.popitem(last=False)

    def get(self, stamp: Stamp | None) -> SentFrame | None:
        """Return the frame with this stamp (the newest for None), or None."""
        with self._lock:
            if stamp is None:
                return next(reversed(self._frames.values()), None)
            return self._frames.get(stamp.ns)

    def describe(self) -> str:
        """Say which stamps are held, for error replies."""
        with self._lock:
            if not self._frames:
                return 'no frame has been streamed yet'
            stamps = [frame.view.stamp for frame in self._frames.values()]
        return f'the console holds the last {len(stamps)} frames, {stamps[0]} to {stamps[-1]}'


@dataclass(frozen=True)
class CandidateSet:
    """SAM 2's multimask candidates from a browser's last single-point prompt."""

    object_id: int
    stamp: Stamp
    masks: tuple  # sam2_ros/Mask messages


def frame_view(msg) -> FrameView:
    """Convert a sam2_ros/TrackedObjectArray into what the browser and the export use."""
    result = msg_to_frame_result(msg)
    objects = tuple(
        ObjectView(
            obj_id=obj.obj_id,
            label=obj.label,
            class_name=obj.class_name,
            state=obj.state.name,
            score=obj.score,
            visibility=obj.visibility,
            box=(0, 0, 0, 0) if obj.box is None else _xywh(obj.box),
            area=obj.area,
            mask=obj.mask,
        )
        for obj in result.objects
    )
    return FrameView(
        stamp=Stamp(int(msg.header.stamp.sec), int(msg.header.stamp.nanosec)),
        frame_id=msg.header.frame_id,
        width=int(msg.image_width),
        height=int(msg.image_height),
        is_keyframe=result.is_keyframe,
        objects=objects,
    )


def _xywh(box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = box
    return (x0, y0, x1 - x0, y1 - y0)
