"""Header stamps (builtin_interfaces/Time) as one integer key and one text form.

Duck-typed on `sec` and `nanosec`, so rclpy messages, rosbags messages and plain records all
work; nothing here imports ROS.
"""

from __future__ import annotations

NS_PER_SEC = 1_000_000_000


def stamp_ns(stamp) -> int:
    """Return a stamp as integer nanoseconds: how frames are keyed and matched."""
    return int(stamp.sec) * NS_PER_SEC + int(stamp.nanosec)


def stamp_text(ns: int) -> str:
    """Format nanoseconds as `sec.nanosec`, as the tracker's messages and logs show stamps."""
    return f'{ns // NS_PER_SEC}.{ns % NS_PER_SEC:09d}'
