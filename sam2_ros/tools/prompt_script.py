"""Prompt scripts: the prompts of a replay session, in a YAML file, so it can be reproduced.

    # frame: index of the image in the bag (0 = first); time: seconds after the first image
    events:
      - frame: 0
        add: {name: mug, label: red mug, box: [120, 80, 260, 240], ground_truth: 1}
      - frame: 10
        add: {object: mug, points: [[180, 150, foreground], [200, 90, background]]}
      - time: 2.5
        remove: mug            # an object by its name, or by the id the node gave it
      - frame: 40
        reset: true

Each event has exactly one of `frame` or `time` and exactly one action:
- `add`: without `object` it creates an object (the node assigns the id, `name` lets later
  events refer to it); with `object` (a name or an id) it refines that object. Points are
  `[x, y]` (foreground), `[x, y, label]` or `{x, y, label}` with label `foreground`/`1` or
  `background`/`0`; `box` is `[x_min, y_min, x_max, y_max]` in image pixels; `label` is the
  object's label; `ground_truth` names the ground-truth object it follows (for evaluation).
- `remove`: an object by name or id.
- `reset: true`: remove every object.

Errors name the file and line (`prompts.yaml:7: box needs 4 numbers, got 3`), and every error
of the file is reported at once.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
import math
from pathlib import Path

import yaml

ACTIONS = ('add', 'remove', 'reset')
POINT_LABELS = {'foreground': 1, 'fg': 1, 1: 1, 'background': 0, 'bg': 0, 0: 0}
_ADD_KEYS = {'name', 'object', 'label', 'points', 'box', 'ground_truth'}


class PromptScriptError(ValueError):
    """A prompt script with errors; the message lists each one with its line."""


@dataclass(frozen=True)
class ScriptEvent:
    """One scripted action, at a frame index or a time offset (exactly one is set)."""

    line: int
    action: str  # 'add', 'remove' or 'reset'
    frame: int | None = None
    time_s: float | None = None
    name: str = ''  # add: the name later events use for a new object
    target: str | int | None = None  # add (refine) / remove: an object name or id
    label: str = ''
    points: tuple[tuple[float, float, int], ...] = ()  # (x, y, 1 = foreground, 0 = background)
    box: tuple[float, float, float, float] | None = None
    ground_truth: int | None = None

    def describe(self) -> str:
        """Return a one-line human description."""
        when = f'frame {self.frame}' if self.frame is not None else f't={self.time_s:g}s'
        what = {
            'add': f'add {self.name or self.target or "new object"}',
            'remove': f'remove {self.target}',
            'reset': 'reset',
        }[self.action]
        return f'{when}: {what} (line {self.line})'


@dataclass
class PromptScript:
    """A validated prompt script."""

    events: list[ScriptEvent]
    path: str = '<string>'

    @property
    def uses_time(self) -> bool:
        """Return whether an event is placed by time (resolving it needs the image stamps)."""
        return any(event.frame is None for event in self.events)

    def resolve(self, frames: int, stamps_ns: list[int] = ()) -> dict[int, list[ScriptEvent]]:
        """Return {frame index: events} for a bag of `frames` images.

        A `time` event goes to the first frame at or after first stamp + time, so a script
        that `uses_time` needs the images' stamps (ns). Events past the end of the bag raise
        PromptScriptError, naming their lines.
        """
        if not frames:
            raise PromptScriptError(f'{self.path}: the bag has no images to prompt on')
        if self.uses_time and len(stamps_ns) != frames:
            raise ValueError(f'{len(stamps_ns)} stamps for {frames} frames: give every stamp')
        schedule: dict[int, list[ScriptEvent]] = {}
        late = []
        for event in self.events:
            index = event.frame
            if index is None:
                target = stamps_ns[0] + round(event.time_s * 1e9)
                index = next((i for i, s in enumerate(stamps_ns) if s >= target), None)
            if index is None or index >= frames:
                late.append(
                    f'{self.path}:{event.line}: {event.describe()} is after the last '
                    f'image (the bag has {frames} images)'
                )
                continue
            schedule.setdefault(index, []).append(event)
        if late:
            raise PromptScriptError('\n'.join(late))
        return schedule


class _LineDict(dict):
    """A mapping that knows the line of each of its keys."""

    line = 0
    key_lines: dict = {}

    def line_of(self, key) -> int:
        return self.key_lines.get(key, self.line)


class _LineLoader(yaml.SafeLoader):
    """A safe loader whose mappings are _LineDicts."""


def _construct_line_dict(loader: _LineLoader, node) -> _LineDict:
    loader.flatten_mapping(node)
    mapping = _LineDict(loader.construct_mapping(node, deep=True))
    mapping.line = node.start_mark.line + 1
    mapping.key_lines = {key.value: key.start_mark.line + 1 for key, _ in node.value}
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_line_dict)


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class _Parser:
    def __init__(self, path: str) -> None:
        self.path = path
        self.errors: list[str] = []
        self.names: set[str] = set()

    def error(self, line: int, text: str) -> None:
        self.errors.append(f'{self.path}:{line}: {text}')

    def parse(self, data) -> list[ScriptEvent]:
        if not isinstance(data, dict) or 'events' not in data:
            self.error(getattr(data, 'line', 1), 'the script needs a top-level `events:` list')
            return []
        unknown = set(data) - {'events'}
        for key in sorted(map(str, unknown)):
            self.error(data.line_of(key), f'unknown top-level key `{key}` (expected `events`)')
        items = data['events']
        if not isinstance(items, list):
            self.error(data.line_of('events'), '`events` must be a list')
            return []
        events = []
        for item in items:
            event = self.event(item, data.line_of('events'))
            if event is not None:
                events.append(event)
        return events

    def event(self, item, parent_line: int) -> ScriptEvent | None:
        if not isinstance(item, _LineDict):
            self.error(parent_line, f'each event must be a mapping, got {item!r}')
            return None
        line = item.line
        when = self.when(item)
        actions = [key for key in ACTIONS if key in item]
        unknown = set(item) - set(ACTIONS) - {'frame', 'time'}
        for key in sorted(map(str, unknown)):
            self.error(
                item.line_of(key),
                f'unknown event key `{key}` (expected frame or time, '
                'and one of add, remove, reset)',
            )
        if len(actions) != 1:
            self.error(
                line,
                f'an event needs exactly one of add, remove, reset; got '
                f'{", ".join(actions) or "none"}',
            )
            return None
        action = actions[0]
        if action == 'reset':
            event = ScriptEvent(line, 'reset')
            if item['reset'] is not True:
                self.error(item.line_of('reset'), '`reset` must be `true`')
                event = None
        elif action == 'remove':
            target = self.target(item['remove'], item.line_of('remove'))
            event = None if target is None else ScriptEvent(line, 'remove', target=target)
        else:
            event = self.add(item['add'], item.line_of('add'))
        if event is None or when is None:
            return None
        return replace(event, **when)

    def when(self, item: _LineDict) -> dict | None:
        has_frame, has_time = 'frame' in item, 'time' in item
        if has_frame == has_time:
            self.error(item.line, 'an event needs exactly one of `frame` or `time`')
            return None
        if has_frame:
            frame = item['frame']
            if isinstance(frame, bool) or not isinstance(frame, int) or frame < 0:
                self.error(item.line_of('frame'), f'frame must be an integer >= 0, got {frame!r}')
                return None
            return {'frame': frame}
        time_s = item['time']
        if not _finite(time_s) or time_s < 0:
            self.error(
                item.line_of('time'), f'time must be a number of seconds >= 0, got {time_s!r}'
            )
            return None
        return {'time_s': float(time_s)}

    def target(self, value, line: int) -> str | int | None:
        if isinstance(value, bool) or not isinstance(value, (int, str)) or value in (0, ''):
            self.error(line, f'an object is a name or an id >= 1, got {value!r}')
            return None
        if isinstance(value, int) and value < 0:
            self.error(line, f'an object id must be >= 1, got {value}')
            return None
        if isinstance(value, str) and value not in self.names:
            self.error(line, f'object `{value}` is not named by an earlier add')
            return None
        return value

    def add(self, spec, line: int) -> ScriptEvent | None:
        if not isinstance(spec, _LineDict):
            self.error(line, f'`add` must be a mapping, got {spec!r}')
            return None
        for key in sorted(map(str, set(spec) - _ADD_KEYS)):
            self.error(
                spec.line_of(key),
                f'unknown add key `{key}` (expected {", ".join(sorted(_ADD_KEYS))})',
            )
        ok = True
        target = None
        if 'object' in spec:
            target = self.target(spec['object'], spec.line_of('object'))
            ok = target is not None
        name = spec.get('name', '')
        if not isinstance(name, str):
            self.error(spec.line_of('name'), f'name must be a string, got {name!r}')
            ok = False
        elif name and target is not None:
            self.error(spec.line_of('name'), 'name is for new objects; this add refines one')
            ok = False
        elif name in self.names:
            self.error(spec.line_of('name'), f'name `{name}` is already used')
            ok = False
        label = spec.get('label', '')
        if not isinstance(label, str):
            self.error(spec.line_of('label'), f'label must be a string, got {label!r}')
            ok = False
        points = self.points(spec.get('points', []), spec.line_of('points'))
        box = self.box(spec.get('box'), spec.line_of('box'))
        ground_truth = spec.get('ground_truth')
        if ground_truth is not None and (
            isinstance(ground_truth, bool) or not isinstance(ground_truth, int) or ground_truth < 1
        ):
            self.error(
                spec.line_of('ground_truth'),
                f'ground_truth must be an id >= 1, got {ground_truth!r}',
            )
            ok = False
        if points is None or box is False:
            return None
        if not points and box is None:
            self.error(line, 'an add needs points or a box')
            return None
        if not ok:
            return None
        if name:
            self.names.add(name)
        return ScriptEvent(
            line,
            'add',
            name=name,
            target=target,
            label=label,
            points=points,
            box=box,
            ground_truth=ground_truth,
        )

    def points(self, value, line: int):
        if not isinstance(value, list):
            self.error(line, f'points must be a list, got {value!r}')
            return None
        points = []
        for point in value:
            if isinstance(point, dict):
                unknown = set(point) - {'x', 'y', 'label'}
                if unknown:
                    self.error(line, f'unknown point keys {sorted(map(str, unknown))}')
                    return None
                values = [point.get('x'), point.get('y'), point.get('label', 'foreground')]
            elif isinstance(point, list) and len(point) in (2, 3):
                values = [*point, 'foreground'] if len(point) == 2 else list(point)
            else:
                self.error(
                    line, f'a point is [x, y], [x, y, label] or {{x, y, label}}, got {point!r}'
                )
                return None
            x, y, label = values
            if not (_finite(x) and _finite(y)) or x < 0 or y < 0:
                self.error(
                    line, f'point coordinates must be finite numbers >= 0, got {x!r}, {y!r}'
                )
                return None
            if isinstance(label, bool) or label not in POINT_LABELS:
                self.error(
                    line, f'point label must be foreground (1) or background (0), got {label!r}'
                )
                return None
            points.append((float(x), float(y), POINT_LABELS[label]))
        return tuple(points)

    def box(self, value, line: int):
        if value is None:
            return None
        if not isinstance(value, list) or len(value) != 4:
            count = len(value) if isinstance(value, list) else 'not a list'
            self.error(line, f'box needs 4 numbers [x_min, y_min, x_max, y_max], got {count}')
            return False
        if not all(_finite(v) for v in value):
            self.error(line, f'box values must be finite numbers, got {value}')
            return False
        x0, y0, x1, y1 = (float(v) for v in value)
        if x0 < 0 or y0 < 0 or x1 <= x0 or y1 <= y0:
            self.error(
                line, f'box must have 0 <= x_min < x_max and 0 <= y_min < y_max, got {value}'
            )
            return False
        return (x0, y0, x1, y1)


def parse_prompt_script(text: str, path: str = '<string>') -> PromptScript:
    """Parse and validate a prompt script; raise PromptScriptError listing every error."""
    try:
        data = yaml.load(text, Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as error:
        mark = getattr(error, 'problem_mark', None)
        where = f'{path}:{mark.line + 1}' if mark is not None else path
        problem = getattr(error, 'problem', None) or str(error)
        raise PromptScriptError(f'{where}: not valid YAML: {problem}') from None
    parser = _Parser(path)
    events = parser.parse(data)
    if parser.errors:
        raise PromptScriptError('\n'.join(parser.errors))
    return PromptScript(events, path)


def load_prompt_script(path: str | Path) -> PromptScript:
    """Read and validate the prompt script at `path`."""
    try:
        text = Path(path).read_text(encoding='utf-8')
    except OSError as error:
        raise PromptScriptError(f'{path}: cannot read the prompt script: {error}') from None
    except UnicodeDecodeError as error:
        raise PromptScriptError(
            f'{path}: not UTF-8 text: byte 0x{error.object[error.start]:02x} at offset '
            f'{error.start}'
        ) from None
    return parse_prompt_script(text, str(path))


def dump_prompt_script(events: list[dict], comment: str = '') -> str:
    """Return the YAML text of a script from plain event dictionaries (flow style per event)."""
    lines = [f'# {line}' for line in comment.splitlines()] + ['events:']
    for event in events:
        body = yaml.safe_dump(event, default_flow_style=True, sort_keys=False, width=1000)
        lines.append(f'  - {body.strip()}')
    return '\n'.join(lines) + '\n'
