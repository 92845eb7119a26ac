"""Test harness: loopback-only ROS networking, a private domain, rclpy fixtures.

Importing this module (pytest does so before any test) confines every ROS context created by
the tests, in this process and in child processes, to localhost and to a ROS_DOMAIN_ID that
no concurrent run on this machine holds.
"""

from __future__ import annotations

import os

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


def _require_built_interfaces():
    try:
        import sam2_ros.msg  # noqa: F401
    except ImportError as error:
        raise pytest.UsageError(
            'sam2_ros interfaces are not built or not on the path: run the tests with '
            f'scripts/test.sh (or scripts/setup.sh, then source scripts/env.sh): {error}'
        ) from error


def pytest_configure(config):
    _require_built_interfaces()


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
