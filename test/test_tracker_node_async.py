"""The node with SAM 2 off the frame path (keyframe_mode async, the default).

Real rclpy, untrained SAM 2.1 tiny at 256 px. These tests check what async promises: every
frame answered while SAM 2 works, prompts that wait for a frame still to come (and the bound
on that wait), the age of the SAM 2 result behind every mask, and clean lifecycle
transitions while a SAM 2 step is in flight.
"""

from __future__ import annotations

import math
import threading

from diagnostic_msgs.msg import DiagnosticArray
from node_harness import TrackerHarness
import pytest
from test_tracker_node import FRAMES, add, latest_diagnostics, square_centre

from sam2_ros.core.stamps import stamp_ns

pytestmark = [pytest.mark.ros, pytest.mark.timeout(240)]


@pytest.fixture(scope='module')
def tracker():
    harness = TrackerHarness(keyframe_mode='async', keyframe_interval=3, prompt_wait_sec=5.0)
    harness.wait_connected()
    yield harness
    harness.close()


def _prompt_later(tracker, sec: int, *, points) -> tuple[threading.Thread, list]:
    """Call add_prompt for the frame stamped `sec` on a thread of its own."""
    answers: list = []
    thread = threading.Thread(
        target=lambda: answers.append(add(tracker, points=points, stamp_sec=sec)), daemon=True
    )
    thread.start()
    return thread, answers


def test_a_prompt_for_a_frame_still_to_come_waits_for_it_and_is_answered(tracker):
    tracker.feed(FRAMES[:3], first_sec=100)
    thread, answers = _prompt_later(tracker, 103, points=[(*square_centre(3), 1)])
    thread.join(0.5)
    assert thread.is_alive()  # waiting for its frame, not refused
    tracker.publish(FRAMES[3], 103)
    thread.join(60)
    response = answers[0]
    assert response.success, response.message
    outputs = tracker.feed(FRAMES[4:12], first_sec=104)
    assert all([o.id for o in m.objects] == [response.object_id] for m in outputs)
    for msg in outputs:  # the age of the SAM 2 result behind each mask, in frames and ms
        obj = msg.objects[0]
        age = (stamp_ns(msg.header.stamp) - stamp_ns(obj.keyframe_stamp)) / 1e6
        assert math.isclose(obj.keyframe_age_ms, age, abs_tol=1e-3)
        assert obj.keyframe_age_ms >= 0.0
    assert any(m.is_keyframe for m in outputs)
    assert {m.objects[0].frames_since_keyframe for m in outputs} != {0}


def test_the_wait_for_a_frame_is_bounded_and_the_reason_is_given(tracker):
    from rclpy.parameter import Parameter

    result = tracker.node.set_parameters([Parameter('prompt_wait_sec', value=0.5)])[0]
    assert result.successful, result.reason
    try:
        tracker.feed(FRAMES[:1], first_sec=200)
        response = add(tracker, points=[(*square_centre(0), 1)], stamp_sec=260)
    finally:
        tracker.node.set_parameters([Parameter('prompt_wait_sec', value=5.0)])
    assert not response.success
    assert 'no frame with stamp 260.000000000 arrived within prompt_wait_sec=0.5 s' in (
        response.message
    )
    assert tracker.feed(FRAMES[1:2], first_sec=201)[0].header.stamp.sec == 201  # still up


def test_diagnostics_report_sam2_rate_and_the_age_of_its_results(tracker):
    diagnostics = tracker.subscribe(DiagnosticArray, '/diagnostics')
    tracker.feed(FRAMES[:8], first_sec=300)
    status = latest_diagnostics(tracker, diagnostics)
    assert status['keyframe_mode'] == 'async'
    assert float(status['sam2_last_step_ms']) > 0.0
    assert int(status['sam2_results_discarded']) >= 0 and int(status['sam2_failures']) == 0
    ages = dict(item.split(':') for item in status['sam2_result_age_frames'].split(', '))
    assert ages and all(int(v) >= 0 for v in ages.values())


def test_deactivate_while_sam2_works_stops_cleanly_and_tracking_resumes(tracker):
    from lifecycle_msgs.msg import Transition
    from test_tracker_node import _change_state

    tracker.feed(FRAMES[:2], first_sec=400)
    response = add(tracker, points=[(*square_centre(1), 1)])
    assert response.success, response.message
    pipeline = tracker.node._pipeline
    for i in range(2, 30):  # answered one by one; a keyframe starts every third frame
        tracker.feed([FRAMES[i]], first_sec=400 + i)
        if pipeline.sam2_busy:
            break
    assert pipeline.sam2_busy  # answered while SAM 2 works on an earlier frame
    assert _change_state(tracker, Transition.TRANSITION_DEACTIVATE)
    assert not tracker.node._pipeline.sam2_busy  # its step finished and merged
    assert _change_state(tracker, Transition.TRANSITION_ACTIVATE)
    tracker.wait_connected()
    outputs = tracker.feed(FRAMES[30:34], first_sec=430)
    assert all(response.object_id in [o.id for o in m.objects] for m in outputs)
