"""Argument types for the bag tools' command lines: a bad value is one `error:` line.

Each type raises argparse.ArgumentTypeError naming the value, so argparse prints
`prog: error: argument --fps: ...` and exits with 2, before anything is read or written.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
import re

# A ROS 2 name token: a letter or underscore, then letters, digits, underscores
# (design.ros2.org, "Topic and Service name mapping to DDS"; substitutions and ~ are not
# meaningful in a bag, so they are refused).
_TOKEN = re.compile(r'[A-Za-z_][A-Za-z0-9_]*')


def finite_float(text: str) -> float:
    """Parse a finite number (no nan, no inf)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'{text!r} is not a number') from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f'{text!r} is not a finite number')
    return value


def positive_float(text: str) -> float:
    """Parse a finite number > 0."""
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f'{text!r} must be > 0')
    return value


def nonnegative_float(text: str) -> float:
    """Parse a finite number >= 0."""
    value = finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f'{text!r} must be >= 0')
    return value


def ros_name(text: str) -> str:
    """Parse a ROS 2 topic or node name: '/'-separated tokens, optionally absolute."""
    problem = ros_name_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(f'{text!r} is not a valid ROS name: {problem}')
    return text


def ros_name_problem(name: str) -> str:
    """Return why `name` is not a valid ROS 2 topic/node name, or ''."""
    if not name:
        return 'it is empty'
    body = name[1:] if name.startswith('/') else name
    if not body:
        return 'it names nothing after the /'
    if body.endswith('/'):
        return 'it must not end with /'
    for token in body.split('/'):
        if not token:
            return 'it must not contain //'
        if not _TOKEN.fullmatch(token):
            return (
                f"part '{token}' must start with a letter or _ and hold only letters, digits and _"
            )
    return ''


def new_file(text: str) -> Path:
    """Parse the path of a file to create: its folder must exist, it must not be a folder."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f'{text} is a directory, not a file')
    if not path.resolve().parent.is_dir():
        raise argparse.ArgumentTypeError(f'{text}: its folder does not exist')
    return path
