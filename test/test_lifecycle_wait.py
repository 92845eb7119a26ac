"""Waiting for the tracker to be active by asking it, as sam2_replay.launch.py does."""

import threading

from lifecycle_msgs.msg import Transition, TransitionEvent
from lifecycle_msgs.srv import ChangeState
from polling import spin_until
import pytest

from sam2_ros.ros.lifecycle_wait import wait_for_state
from sam2_ros.ros.names import READY_MESSAGE

pytestmark = [pytest.mark.ros, pytest.mark.timeout(120)]
FAST_NODE = ('untrained_models:=true', 'sam2_image_size:=256', 'device:=cpu', "detector_model:=''")


def spun(make_node, name: str):
    """Return a node spun by a background thread until the test ends."""
    node, executor = make_node(name)
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            executor.spin_once(timeout_sec=0.05)

    thread = threading.Thread(target=spin, daemon=True)
    thread.start()
    return node, executor, stop, thread


def answer(future, timeout: float = 60.0):
    """Return a service future's result (its node is spun by another thread)."""
    done = threading.Event()
    future.add_done_callback(lambda _: done.set())
    assert done.wait(timeout), 'no answer'
    return future.result()


def test_an_autostarted_node_is_found_active_though_its_transition_event_is_gone(
    tracker_process, make_node
):
    process = tracker_process(*FAST_NODE)
    process.wait_for(READY_MESSAGE, timeout=60)  # configured and active by itself
    node, executor = make_node('late_listener')
    events = []
    node.create_subscription(TransitionEvent, '/sam2_tracker/transition_event', events.append, 10)
    # What an OnStateTransition(goal_state='active') handler waits for never comes...
    spin_until(executor, lambda: events, timeout=3)
    assert events == []
    # ...while get_state says so at once.
    node, _, stop, thread = spun(make_node, 'state_asker')
    try:
        assert wait_for_state(node, '/sam2_tracker', 'active', should_stop=lambda: False)
    finally:
        stop.set()
        thread.join()


def test_without_autostart_the_wait_reports_and_ends_when_the_node_is_activated(
    tracker_process, make_node
):
    process = tracker_process(*FAST_NODE, 'autostart:=false')
    node, _, stop, thread = spun(make_node, 'state_asker')
    reports = []
    try:
        # Stopped from outside (a launch shutting down): False, after saying what it waits on.
        deadline = threading.Event()
        threading.Timer(2.5, deadline.set).start()
        assert not wait_for_state(
            node,
            '/sam2_tracker',
            should_stop=deadline.is_set,
            report=reports.append,
            report_every_s=1.0,
        )
        assert reports and 'to be active' in reports[-1], reports

        waiting = []
        waiter = threading.Thread(
            target=lambda: waiting.append(
                wait_for_state(node, '/sam2_tracker', should_stop=stop.is_set)
            ),
            daemon=True,
        )
        waiter.start()
        client = node.create_client(ChangeState, '/sam2_tracker/change_state')
        assert client.wait_for_service(timeout_sec=30)
        for transition in (Transition.TRANSITION_CONFIGURE, Transition.TRANSITION_ACTIVATE):
            assert waiting == [], 'the wait ended before the node was active'
            request = ChangeState.Request()
            request.transition.id = transition
            assert answer(client.call_async(request)).success
        waiter.join(timeout=10)
        assert waiting == [True]
    finally:
        stop.set()
        thread.join()
    assert 'Traceback' not in '\n'.join(process.output)
