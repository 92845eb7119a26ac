"""The node's log lines reach /rosout with a severity: core and worker records, rejections."""

from __future__ import annotations

import logging

from node_harness import TrackerHarness
from polling import wait_for
import pytest
from rcl_interfaces.msg import Log
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from test_tracker_node import FRAMES, add

from sam2_ros.msg import Mask
from sam2_ros.srv import AddPrompt, RemoveObject

pytestmark = [pytest.mark.ros, pytest.mark.timeout(240)]


@pytest.fixture(scope='module')
def logged():
    """Yield a tracker harness and every /rosout record (also those from before it)."""
    harness = TrackerHarness(detector_model='')
    records: list[Log] = []
    qos = QoSProfile(
        depth=1000,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL,
    )
    harness.client.create_subscription(Log, '/rosout', records.append, qos)
    harness.wait_connected()
    harness.feed(FRAMES[:1], 1)
    yield harness, records
    harness.close()


def record(records: list[Log], text: str, timeout: float = 10.0) -> Log:
    """Wait for the tracker's /rosout record containing `text`; return it."""

    def found():
        return [r for r in list(records) if text in r.msg and r.name.endswith('sam2_tracker')]

    assert wait_for(found, timeout), f'no /rosout record with {text!r}: ' + '; '.join(
        f'{r.level}:{r.msg}' for r in records[-15:]
    )
    return found()[-1]


def test_the_untrained_weights_warning_is_on_rosout_at_warn(logged):
    _, records = logged
    assert record(records, 'UNTRAINED random weights').level == Log.WARN


def test_python_logging_of_the_worker_is_on_rosout_with_its_severity(logged):
    _, records = logged
    worker = logging.getLogger('sam2_ros.tracker.worker')
    try:
        raise RuntimeError('CUDA out of memory (simulated)')
    except RuntimeError:
        worker.exception('tracking failed on frame %s', '12.5')
    error = record(records, 'tracking failed on frame 12.5')
    assert error.level == Log.ERROR and 'RuntimeError: CUDA out of memory' in error.msg
    logging.getLogger('sam2_ros.models.detector').critical('detector gone')
    assert record(records, 'detector gone').level == Log.FATAL


def test_every_rejection_is_logged_at_warn(logged):
    tracker, records = logged
    request = AddPrompt.Request(mask=Mask(height=4, width=4, counts=[3, 2]))
    assert not tracker.call(AddPrompt, 'add_prompt', request).success
    assert record(records, 'add_prompt rejected').level == Log.WARN

    answer = add(tracker, points=[(10, 10, 1)], canvas=(320, 0))
    assert not answer.success
    assert record(records, f'add_prompt rejected: {answer.message}').level == Log.WARN

    answer = tracker.call(RemoveObject, 'remove_object', RemoveObject.Request(object_id=77))
    assert not answer.success
    assert record(records, 'remove_object rejected').level == Log.WARN
