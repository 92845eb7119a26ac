"""Loopback-only ROS 2 networking for every process this project starts.

Default DDS discovery multicasts onto the network. Tests, demos and benchmarks must stay on
this machine and must not see each other, so each run claims its own ROS_DOMAIN_ID (held by
a file lock for the life of the process) and restricts discovery to localhost.

Iron and newer read ROS_AUTOMATIC_DISCOVERY_RANGE and deprecate ROS_LOCALHOST_ONLY (they warn
when it is set); Humble knows only ROS_LOCALHOST_ONLY and ignores the range. So on Humble both
are set, elsewhere only the range.
"""

from __future__ import annotations

import fcntl
from importlib import metadata
import os
import random
import tempfile

# Domain ids usable on Linux with the default port mapping (0..101; 0 is everybody's default).
_USABLE_DOMAIN_IDS = range(1, 102)
_held_locks: list = []


def claim_domain_id() -> int:
    """Return a ROS_DOMAIN_ID that no other process on this machine has claimed.

    The claim is an exclusive flock on a file in the temp directory, released when the
    process exits; child processes inherit the id through the environment.
    """
    lock_dir = os.path.join(tempfile.gettempdir(), 'sam2_ros_domains')
    os.makedirs(lock_dir, exist_ok=True)
    candidates = list(_USABLE_DOMAIN_IDS)
    random.Random(os.getpid() ^ int.from_bytes(os.urandom(4), 'little')).shuffle(candidates)
    for domain_id in candidates:
        handle = open(os.path.join(lock_dir, f'{domain_id}.lock'), 'w')
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        _held_locks.append(handle)
        return domain_id
    raise RuntimeError('every ROS_DOMAIN_ID from 1 to 101 is claimed by another process')


def is_humble(environ=None) -> bool:
    """Whether the ROS 2 in use is Humble: ROS_DISTRO says so, or else rclpy's version (3.x)."""
    environ = os.environ if environ is None else environ
    distro = environ.get('ROS_DISTRO')
    if distro:
        return distro == 'humble'
    try:
        return int(metadata.version('rclpy').split('.')[0]) <= 3
    except (metadata.PackageNotFoundError, ValueError):
        return False


def apply_loopback_environment(environ=None, domain_id: int | None = None) -> int:
    """Confine ROS discovery to localhost and set a private domain id in `environ`.

    Call before rclpy.init() and before starting ROS child processes. Returns the domain id.
    """
    environ = os.environ if environ is None else environ
    if domain_id is None:
        domain_id = claim_domain_id()
    environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    environ['ROS_STATIC_PEERS'] = ''
    if is_humble(environ):
        environ['ROS_LOCALHOST_ONLY'] = '1'
    else:
        environ.pop('ROS_LOCALHOST_ONLY', None)  # deprecated there, and warned about
    environ['ROS_DOMAIN_ID'] = str(domain_id)
    return domain_id


def default_to_loopback(environ=None) -> str:
    """Keep discovery on localhost unless the user chose a range; return the range in use.

    For tools that join an existing graph (they keep its ROS_DOMAIN_ID): replaying a bag
    publishes camera topics and /clock, which should not reach other machines by accident.
    """
    environ = os.environ if environ is None else environ
    humble = is_humble(environ)
    if humble:  # Humble ignores the range: only ROS_LOCALHOST_ONLY is a choice there
        if 'ROS_LOCALHOST_ONLY' not in environ:
            environ['ROS_LOCALHOST_ONLY'] = '1'
        return (
            'LOCALHOST (ROS_LOCALHOST_ONLY)' if environ['ROS_LOCALHOST_ONLY'] == '1' else 'SUBNET'
        )
    if (
        not environ.get('ROS_AUTOMATIC_DISCOVERY_RANGE')
        and environ.get('ROS_LOCALHOST_ONLY') != '1'
    ):
        environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    return environ.get('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST (ROS_LOCALHOST_ONLY)')
