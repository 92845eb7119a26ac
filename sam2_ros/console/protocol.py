"""The browser console's message protocol: commands, coordinate scaling, frame views, replies.

Nothing here imports rclpy, so all of it is tested on plain Python values.

Browser -> server: JSON text messages on one WebSocket, each a command with a `type`:

    {"type": "prompt", "request_id": 7, "object_id": 0, "label": "mug",
     "stamp": {"sec": 12, "nanosec": 500}, "canvas": {"width": 800, "height": 600},
     "points": [{"x": 410.5, "y": 300, "label": 1}], "box": [x0, y0, x1, y1]}
    {"type": "choose_candidate", "request_id": 8, "index": 1}
    {"type": "remove", "request_id": 9, "object_id": 3}
    {"type": "reset", "request_id": 10}

`object_id` 0 starts a new object; `stamp` is the header stamp of the frame the operator
clicked on; coordinates are in the displayed canvas's pixels (`canvas` is its displayed size)
and the server scales them to image pixels. Server -> browser: one `hello` (JSON text), a
`tracker` message (JSON text) on connection and whenever the tracker's /diagnostics change
(its state, and whether it runs untrained weights), one `reply` (JSON text) per command, and
frames as binary messages (`pack_frame`).
"""

from __future__ import annotations

from dataclasses import dataclass
import functools
import json
import math
import struct

import numpy as np

from sam2_ros.core.prompts import scale_from_canvas
from sam2_ros.core.rle import encode_rle
from sam2_ros.core.stamps import stamp_ns, stamp_text

PROTOCOL_VERSION = 1
MAX_MESSAGE_BYTES = 64 * 1024  # a prompt with every allowed point is under 4 KiB
MAX_POINTS = 64
MAX_LABEL_CHARS = 100
MAX_CANVAS_PIXELS = 16384.0  # per side
MAX_REQUEST_ID = 2**53 - 1  # JavaScript's largest exact integer
MAX_OBJECT_ID = 2**32 - 1  # uint32 in AddPrompt and RemoveObject

_FIELDS = {
    'prompt': {'object_id', 'label', 'stamp', 'canvas', 'points', 'box'},
    'choose_candidate': {'index'},
    'remove': {'object_id'},
    'reset': set(),
}
_COMMON_FIELDS = {'type', 'request_id'}


class ProtocolError(ValueError):
    """A browser message that cannot be used; the message says why."""

    def __init__(self, message: str, request_id: int | None = None) -> None:
        """Keep the request id, when it could be read, for the error reply."""
        super().__init__(message)
        self.request_id = request_id


class ConsoleError(Exception):
    """A browser request that failed; `code` tells the page what kind of failure it was."""

    def __init__(self, message: str, code: str) -> None:
        """Keep the code: not_found, unavailable, rejected or internal."""
        super().__init__(message)
        self.code = code


# ------------------------------------------------------------------ commands


@dataclass(frozen=True)
class Stamp:
    """A ROS header stamp."""

    sec: int
    nanosec: int

    @property
    def ns(self) -> int:
        """Return the stamp in nanoseconds."""
        return stamp_ns(self)

    def __str__(self) -> str:
        """Format as `sec.nanosec`, as the tracker's messages do."""
        return stamp_text(self.ns)


@dataclass(frozen=True)
class PromptCommand:
    """Points and/or a box for an object (0 = a new one), in displayed-canvas pixels."""

    request_id: int | None
    object_id: int
    label: str
    stamp: Stamp
    canvas: tuple[float, float]  # displayed width, height
    points: tuple[tuple[float, float, int], ...]  # (x, y, label 0/1)
    box: tuple[float, float, float, float] | None  # x_min, y_min, x_max, y_max


@dataclass(frozen=True)
class ChooseCandidateCommand:
    """Replace the last prompted object's mask with one of SAM 2's multimask candidates."""

    request_id: int | None
    index: int


@dataclass(frozen=True)
class RemoveCommand:
    """Stop tracking one object."""

    request_id: int | None
    object_id: int


@dataclass(frozen=True)
class ResetCommand:
    """Remove every object."""

    request_id: int | None


Command = PromptCommand | ChooseCandidateCommand | RemoveCommand | ResetCommand


def _reject_constant(name: str):
    raise ProtocolError(f'{name} is not a number: send finite numbers only')


def _kind(value) -> str:
    return 'null' if value is None else type(value).__name__


def _integer(value, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProtocolError(f'{name} must be an integer, got {_kind(value)}')
    if not low <= value <= high:
        raise ProtocolError(f'{name} = {value} is outside [{low}, {high}]')
    return value


def _number(value, name: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProtocolError(f'{name} must be a number, got {_kind(value)}')
    if not math.isfinite(value):
        raise ProtocolError(f'{name} is {value}, not a finite number')
    if not low <= value <= high:
        raise ProtocolError(f'{name} = {value:g} is outside [{low:g}, {high:g}]')
    return float(value)


def _object(value, name: str, fields: set[str]) -> dict:
    if not isinstance(value, dict):
        raise ProtocolError(f'{name} must be an object, got {_kind(value)}')
    missing = sorted(fields - value.keys())
    unknown = sorted(value.keys() - fields)
    if missing or unknown:
        problems = [f'missing {missing}'] if missing else []
        problems += [f'unknown {unknown}'] if unknown else []
        raise ProtocolError(f'{name} fields: {", ".join(problems)}; expected {sorted(fields)}')
    return value


def parse_command(data: str | bytes) -> Command:
    """Parse and validate one browser message; raise ProtocolError saying what is wrong."""
    try:
        size = len(data.encode()) if isinstance(data, str) else len(data)  # UTF-8 on the wire
    except UnicodeEncodeError as error:
        raise ProtocolError(f'text is not valid UTF-8: {error.reason}') from None
    if size > MAX_MESSAGE_BYTES:
        raise ProtocolError(
            f'message of {size} bytes exceeds the limit of {MAX_MESSAGE_BYTES} bytes'
        )
    if not isinstance(data, str):
        raise ProtocolError('binary messages are not accepted: send JSON text')
    try:
        message = json.loads(data, parse_constant=_reject_constant)
    except json.JSONDecodeError as error:
        raise ProtocolError(f'not valid JSON: {error}') from None
    except RecursionError:
        raise ProtocolError('not valid JSON for a command: nested too deeply') from None
    if not isinstance(message, dict):
        raise ProtocolError(f'a command must be a JSON object, got {_kind(message)}')
    request_id = message.get('request_id')
    valid_id = request_id if _is_request_id(request_id) else None
    try:
        if request_id is not None and valid_id is None:
            _integer(request_id, 'request_id', 0, MAX_REQUEST_ID)
        kind = message.get('type')
        if not isinstance(kind, str) or kind not in _FIELDS:
            raise ProtocolError(f'type must be one of {sorted(_FIELDS)}, got {kind!r}')
        unknown = sorted(message.keys() - _FIELDS[kind] - _COMMON_FIELDS)
        if unknown:
            raise ProtocolError(f'unknown fields for {kind}: {unknown}')
        return _PARSERS[kind](message, valid_id)
    except ProtocolError as error:
        raise ProtocolError(str(error), valid_id) from None


def _is_request_id(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_REQUEST_ID


def _parse_prompt(message: dict, request_id: int | None) -> PromptCommand:
    canvas = _object(message.get('canvas'), 'canvas', {'width', 'height'})
    width = _number(canvas['width'], 'canvas.width', 1.0, MAX_CANVAS_PIXELS)
    height = _number(canvas['height'], 'canvas.height', 1.0, MAX_CANVAS_PIXELS)
    stamp = _object(message.get('stamp'), 'stamp', {'sec', 'nanosec'})
    label = message.get('label', '')
    if not isinstance(label, str):
        raise ProtocolError(f'label must be a string, got {_kind(label)}')
    if len(label) > MAX_LABEL_CHARS or not label.isprintable():
        raise ProtocolError(f'label must be printable text of at most {MAX_LABEL_CHARS} chars')
    points = message.get('points', [])
    if not isinstance(points, list) or len(points) > MAX_POINTS:
        raise ProtocolError(f'points must be a list of at most {MAX_POINTS} points')
    parsed_points = tuple(
        _parse_point(point, f'points[{i}]', width, height) for i, point in enumerate(points)
    )
    box = message.get('box')
    parsed_box = None if box is None else _parse_box(box, width, height)
    if not parsed_points and parsed_box is None:
        raise ProtocolError('empty prompt: give at least one point or a box')
    return PromptCommand(
        request_id=request_id,
        object_id=_integer(message.get('object_id', 0), 'object_id', 0, MAX_OBJECT_ID),
        label=label,
        stamp=Stamp(
            _integer(stamp['sec'], 'stamp.sec', 0, 2**31 - 1),
            _integer(stamp['nanosec'], 'stamp.nanosec', 0, 999_999_999),
        ),
        canvas=(width, height),
        points=parsed_points,
        box=parsed_box,
    )


def _parse_point(point, name: str, width: float, height: float) -> tuple[float, float, int]:
    point = _object(point, name, {'x', 'y', 'label'})
    return (
        _number(point['x'], f'{name}.x', 0.0, width),
        _number(point['y'], f'{name}.y', 0.0, height),
        _integer(point['label'], f'{name}.label (0 background, 1 foreground)', 0, 1),
    )


def _parse_box(box, width: float, height: float) -> tuple[float, float, float, float]:
    if not isinstance(box, list) or len(box) != 4:
        raise ProtocolError('box must be a list [x_min, y_min, x_max, y_max] or null')
    limits = (width, height, width, height)
    x0, y0, x1, y1 = (_number(v, f'box[{i}]', 0.0, limits[i]) for i, v in enumerate(box))
    if x1 <= x0 or y1 <= y0:
        raise ProtocolError(f'box {box} is empty or inverted: need x_max > x_min, y_max > y_min')
    return x0, y0, x1, y1


def _parse_choice(message: dict, request_id: int | None) -> ChooseCandidateCommand:
    return ChooseCandidateCommand(request_id, _integer(message.get('index'), 'index', 0, 15))


def _parse_remove(message: dict, request_id: int | None) -> RemoveCommand:
    object_id = _integer(message.get('object_id'), 'object_id', 1, MAX_OBJECT_ID)
    return RemoveCommand(request_id, object_id)


def _parse_reset(message: dict, request_id: int | None) -> ResetCommand:
    return ResetCommand(request_id)


_PARSERS = {
    'prompt': _parse_prompt,
    'choose_candidate': _parse_choice,
    'remove': _parse_remove,
    'reset': _parse_reset,
}


# ------------------------------------------------------------------ canvas -> image


@dataclass(frozen=True)
class ImagePrompt:
    """A prompt in image pixels: (N, 2) float points, (N,) labels, optional box."""

    points: np.ndarray
    labels: np.ndarray
    box: np.ndarray | None

    def describe(self) -> str:
        """Summarise in image pixels, e.g. `box [40, 30, 80, 60] + background (52.0, 47.5)`."""
        parts = []
        if self.box is not None:
            parts.append('box [' + ', '.join(f'{v:.0f}' for v in self.box) + ']')
        for (x, y), label in zip(self.points, self.labels, strict=True):
            parts.append(f'{"foreground" if label else "background"} ({x:.1f}, {y:.1f})')
        return ' + '.join(parts)


def to_image_pixels(command: PromptCommand, image_size: tuple[int, int]) -> ImagePrompt:
    """Scale a prompt from the displayed canvas to the image's pixels; check the bounds.

    The scaling is the tracker's own (`core.prompts.scale_from_canvas`). It runs here rather
    than through AddPrompt's canvas fields because a browser's canvas has a fractional CSS
    size, which those uint32 fields would round; and an out-of-image click is answered in the
    browser's terms before any service call.
    """
    width, height = image_size
    points = np.array([p[:2] for p in command.points], dtype=np.float64).reshape(-1, 2)
    points = scale_from_canvas(points, command.canvas, image_size)
    labels = np.array([p[2] for p in command.points], dtype=np.int64)
    box = None
    if command.box is not None:
        box = scale_from_canvas(np.reshape(command.box, (2, 2)), command.canvas, image_size)
        box = box.ravel()
    corners = points if box is None else np.vstack([points, box.reshape(2, 2)])
    outside = ~np.all((corners >= 0) & (corners <= (width, height)), axis=1)
    if outside.any():
        x, y = corners[np.flatnonzero(outside)[0]]
        raise ProtocolError(
            f'({x:g}, {y:g}) lies outside the {width}x{height} image', command.request_id
        )
    return ImagePrompt(points, labels, box)


# ------------------------------------------------------------------ frames


@dataclass(frozen=True)
class ObjectView:
    """One tracked object as the browser and the export see it."""

    obj_id: int
    label: str
    class_name: str
    state: str
    score: float
    visibility: float
    box: tuple[int, int, int, int]  # x, y, width, height (pixels; zeros when empty)
    area: int
    mask: np.ndarray  # (H, W) bool

    @functools.cached_property
    def counts(self) -> list[int]:
        """Return the mask as COCO-style uncompressed RLE counts (column-major)."""
        return encode_rle(self.mask).counts.tolist()

    @property
    def category(self) -> str:
        """Return the name the export files the object under."""
        return self.label or self.class_name or 'object'

    def to_json(self, height: int, width: int) -> dict:
        """Return the object as sent to the browser."""
        return {
            'id': self.obj_id,
            'label': self.label,
            'class_name': self.class_name,
            'state': self.state,
            'score': round(self.score, 4),
            'visibility': round(self.visibility, 4),
            'box': list(self.box),
            'area': self.area,
            'mask': {'size': [height, width], 'counts': self.counts},
        }


@dataclass(frozen=True)
class FrameView:
    """One tracked frame: the source image's stamp and size, and its objects."""

    stamp: Stamp
    frame_id: str
    width: int
    height: int
    is_keyframe: bool
    objects: tuple[ObjectView, ...]

    def to_json(self) -> dict:
        """Return the frame's metadata as sent to the browser with its JPEG."""
        return {
            'type': 'frame',
            'stamp': {'sec': self.stamp.sec, 'nanosec': self.stamp.nanosec},
            'frame_id': self.frame_id,
            'width': self.width,
            'height': self.height,
            'is_keyframe': self.is_keyframe,
            'objects': [obj.to_json(self.height, self.width) for obj in self.objects],
        }


def pack_frame(view: FrameView, jpeg: bytes) -> bytes:
    """Return one binary frame message: uint32 big-endian JSON length, JSON, JPEG bytes."""
    header = json.dumps(view.to_json(), separators=(',', ':')).encode()
    return struct.pack('>I', len(header)) + header + jpeg


def reply(request_id: int | None, ok: bool, message: str, **fields) -> str:
    """Return the JSON reply to one command."""
    return json.dumps(
        {'type': 'reply', 'request_id': request_id, 'ok': ok, 'message': message, **fields},
        separators=(',', ':'),
        allow_nan=False,
    )


# ------------------------------------------------------------------ tracker status

DIAGNOSTIC_LEVELS = ('OK', 'WARN', 'ERROR', 'STALE')  # diagnostic_msgs/DiagnosticStatus


@dataclass(frozen=True)
class TrackerStatus:
    """What the tracker's /diagnostics say about it, as the page shows it."""

    seen: bool  # False until the first diagnostics of the tracker arrive
    level: str  # one of DIAGNOSTIC_LEVELS, or UNKNOWN before any arrived
    message: str
    lifecycle_state: str
    untrained: bool  # the tracker runs untrained weights: its masks are meaningless
    sam2: str = ''
    detector: str = ''

    def to_json(self) -> dict:
        """Return the `tracker` message sent to browsers."""
        return {
            'type': 'tracker',
            'seen': self.seen,
            'level': self.level,
            'message': self.message,
            'lifecycle_state': self.lifecycle_state,
            'untrained': self.untrained,
            'sam2': self.sam2,
            'detector': self.detector,
        }

    def stale(self, seconds: float) -> TrackerStatus:
        """Return this status marked as not refreshed for `seconds`."""
        return TrackerStatus(
            seen=self.seen,
            level='STALE',
            message=f'no diagnostics from the tracker for {seconds:.0f} s (last: {self.message})',
            lifecycle_state=self.lifecycle_state,
            untrained=self.untrained,
            sam2=self.sam2,
            detector=self.detector,
        )


UNKNOWN_TRACKER = TrackerStatus(
    seen=False,
    level='UNKNOWN',
    message='no diagnostics from the tracker yet',
    lifecycle_state='',
    untrained=False,
)


def tracker_status(level: int, message: str, values: dict[str, str]) -> TrackerStatus:
    """Read the tracker's DiagnosticStatus (level, message, key/values) into a TrackerStatus."""
    name = DIAGNOSTIC_LEVELS[level] if 0 <= level < len(DIAGNOSTIC_LEVELS) else str(level)
    return TrackerStatus(
        seen=True,
        level=name,
        message=message,
        lifecycle_state=values.get('lifecycle_state', ''),
        untrained=values.get('untrained_weights', '').lower() == 'true',
        sam2=values.get('sam2', ''),
        detector=values.get('detector', ''),
    )


def weights_note(tracker: TrackerStatus) -> str:
    """Say which weights made the masks, for exported files."""
    if not tracker.seen:
        return 'weights unknown (no diagnostics from the tracker)'
    if tracker.untrained:
        return 'UNTRAINED WEIGHTS: the masks are meaningless'
    return f'sam2: {tracker.sam2}' if tracker.sam2 else 'trained weights'
