"""Test harness: loopback-only ROS networking, a private domain, rclpy fixtures.

Importing this module (pytest does so before any test) confines every ROS context created by
the tests, in this process and in child processes, to localhost and to a ROS_DOMAIN_ID that
no concurrent run on this machine holds.
"""

from __future__ import annotations

import os
from pathlib import Path
import re

import pytest

from sam2_ros.ros.ros_env import apply_loopback_environment

DOMAIN_ID = apply_loopback_environment()
# Ultralytics probes the internet at import (DNS) and sends usage analytics unless offline;
# tests never need either.
os.environ['YOLO_OFFLINE'] = '1'


def pytest_report_header(config):
    return (
        f'ROS_DOMAIN_ID={os.environ["ROS_DOMAIN_ID"]}, '
        f'ROS_AUTOMATIC_DISCOVERY_RANGE={os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"]}'
    )


def _interfaces_missing() -> str:
    """Return why the colcon-built sam2_ros interfaces cannot be imported, or ''."""
    try:
        import sam2_ros.msg  # noqa: F401
    except ImportError as error:
        return str(error)
    return ''


def _core_only(config) -> bool:
    """Whether the run deselects the ROS tests (`-m "not ros"`, as the README shows)."""
    return 'not ros' in (config.option.markexpr or '')


def pytest_configure(config):
    missing = _interfaces_missing()
    if missing and not _core_only(config):
        raise pytest.UsageError(
            'sam2_ros interfaces are not built or not on the path: run the tests with '
            'scripts/test.sh (or scripts/setup.sh, then source scripts/env.sh); or run the '
            f'ROS-free tests alone with -m "not ros" ({missing})'
        )
    if missing:  # the package comes from the checkout: let child processes import it too
        root = str(Path(__file__).resolve().parents[1])
        os.environ['PYTHONPATH'] = os.pathsep.join(
            filter(None, [root, os.environ.get('PYTHONPATH')])
        )


def pytest_ignore_collect(collection_path, config):
    """Without the built interfaces, `-m "not ros"` does not even import the ROS modules.

    They would fail to import (sam2_ros.msg); their `pytestmark` names them.
    """
    if collection_path.suffix != '.py' or not collection_path.name.startswith('test_'):
        return None
    if not (_core_only(config) and _interfaces_missing()):
        return None
    return True if _ROS_MODULE.search(collection_path.read_text()) else None


_ROS_MODULE = re.compile(r'^pytestmark = .*\bpytest\.mark\.ros\b', re.MULTILINE)


def pytest_report_collectionfinish(config, start_path, items):
    if _core_only(config) and _interfaces_missing():
        return ['sam2_ros interfaces not built: the ROS test modules are not collected']
    return None


@pytest.fixture
def ros_context():
    """Yield a fresh, initialised rclpy Context for one test; shut it down afterwards."""
    import rclpy
    import rclpy.context

    context = rclpy.context.Context()
    rclpy.init(context=context)
    yield context
    rclpy.try_shutdown(context=context)


@pytest.fixture
def make_node(ros_context):
    """Create nodes in the test's context; returns (node, executor) pairs, cleaned up after."""
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node

    created = []

    def factory(name: str, context=None):
        context = context or ros_context
        node = Node(name, context=context)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        created.append((node, executor))
        return node, executor

    yield factory
    for node, executor in created:
        executor.shutdown()
        node.destroy_node()


@pytest.fixture
def tracker_process():
    """Start the installed sam2_tracker_node with extra --ros-args; stopped after the test."""
    from sam2_ros.ros.node_process import NodeProcess, installed_executable

    started = []

    def start(*parameters: str) -> NodeProcess:
        command = [installed_executable('sam2_tracker_node')]
        if parameters:
            command += ['--ros-args'] + [arg for p in parameters for arg in ('-p', p)]
        process = NodeProcess(command)
        started.append(process)
        return process

    yield start
    for process in started:
        process.interrupt()
