"""Seeded fuzzing of the console's browser protocol: any message parses or says why.

Whatever a browser (or anything that can open the socket) sends, `parse_command` returns a
command or raises ProtocolError with a reason, and a parsed prompt maps onto an image or is
refused the same way; no other exception reaches the server.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from sam2_ros.console.protocol import (
    MAX_MESSAGE_BYTES,
    PromptCommand,
    ProtocolError,
    parse_command,
    to_image_pixels,
)

KINDS = ['prompt', 'choose_candidate', 'remove', 'reset', 'PROMPT', '', None, 7, [], {}]
FIELDS = [
    'type', 'request_id', 'object_id', 'label', 'stamp', 'canvas', 'points', 'box', 'index',
    'x', 'y', 'sec', 'nanosec', 'width', 'height', '__proto__', '',
]  # fmt: skip
SCALARS = [
    0, 1, -1, 2**31, 2**63, 10**400, 0.5, -0.0, 1e308, True, False, None, '', '1', 'x' * 300,
    '\x00', '\u202e', 'NaN',
]  # fmt: skip


def _value(rng, depth: int = 0):
    choice = rng.integers(0, 10 if depth < 4 else 6)
    if choice < 6:
        return SCALARS[rng.integers(len(SCALARS))]
    if choice < 8:
        return [_value(rng, depth + 1) for _ in range(rng.integers(0, 5))]
    return {FIELDS[rng.integers(len(FIELDS))]: _value(rng, depth + 1) for _ in range(4)}


def _valid_prompt(rng) -> dict:
    return {
        'type': 'prompt',
        'request_id': int(rng.integers(0, 100)),
        'stamp': {'sec': int(rng.integers(0, 100)), 'nanosec': 0},
        'canvas': {'width': 640, 'height': 480},
        'points': [{'x': float(rng.uniform(-10, 700)), 'y': 10.0, 'label': 1}],
    }


def _message(rng) -> str:
    """Return a random message: valid prompts with one field spoiled, or any JSON at all."""
    if rng.random() < 0.5:
        message = _valid_prompt(rng)
        field = FIELDS[rng.integers(len(FIELDS))]
        if rng.random() < 0.8:
            message[field] = _value(rng)
        message['type'] = KINDS[rng.integers(len(KINDS))] if rng.random() < 0.2 else 'prompt'
    else:
        message = _value(rng)
    text = json.dumps(message)
    if rng.random() < 0.1:
        text = text[: rng.integers(0, len(text) + 1)]  # cut short
    if rng.random() < 0.05:
        text = text.replace('0.5', 'NaN').replace('1e+308', 'Infinity')
    return text


HOSTILE = [
    '[' * 100_000 + ']' * 100_000,  # nesting far deeper than the JSON parser's recursion
    '[' * (MAX_MESSAGE_BYTES // 2 - 1) + ']' * (MAX_MESSAGE_BYTES // 2 - 1),
    '{"type": ["prompt"]}',
    '{"type": {"a": 1}}',
    '{"type": "prompt", "canvas": {"width": 1e400, "height": 2}}',
    '{"type": "remove", "object_id": 1e400}',
    '\ud800',
    b'\xff\xfe',
    '',
]


@pytest.mark.parametrize('message', HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_messages_are_refused_with_a_reason(message):
    with pytest.raises(ProtocolError) as refused:
        parse_command(message)
    assert str(refused.value).strip()


def test_random_messages_parse_or_say_why():
    rng = np.random.default_rng(0)
    parsed = refused = 0
    for _ in range(3000):
        text = _message(rng)
        try:
            command = parse_command(text)
        except ProtocolError as error:
            assert str(error).strip(), text
            refused += 1
            continue
        parsed += 1
        if isinstance(command, PromptCommand):
            try:
                prompt = to_image_pixels(command, (160, 120))
            except ProtocolError as error:
                assert str(error).strip()
                continue
            assert np.isfinite(prompt.points).all()
            assert all(math.isfinite(v) for v in (prompt.box if prompt.box is not None else ()))
    assert parsed > 100 and refused > 1000, (parsed, refused)
