"""Wait until a lifecycle node is in a given state by asking it, not by watching its events.

A lifecycle node publishes each transition once on `~/transition_event`, with volatile QoS: a
subscriber whose match completes after the transition never sees it. sam2_tracker with
`autostart` activates itself in its constructor, often before `ros2 launch`'s subscription is
matched, so a launch file waiting for that event could wait forever. `~/get_state` answers
whenever it is asked, so polling it cannot miss the state.
"""

from __future__ import annotations

from collections.abc import Callable
import threading
import time

from lifecycle_msgs.srv import GetState

# Seconds between two get_state calls, and the longest wait for one answer.
POLL_PERIOD_S = 0.5
ANSWER_TIMEOUT_S = 5.0


def query_state(client, timeout_s: float = ANSWER_TIMEOUT_S) -> str | None:
    """Return the label of the node's current state, or None without an answer in time.

    The client's node must be spun by another thread (a launch's ROS node, an executor).
    """
    answered = threading.Event()
    future = client.call_async(GetState.Request())
    future.add_done_callback(lambda _: answered.set())
    if not answered.wait(timeout_s):
        future.cancel()
        return None
    response = future.result()
    return None if response is None else response.current_state.label


def wait_for_state(
    node,
    target: str,
    state: str = 'active',
    should_stop: Callable[[], bool] = lambda: False,
    report: Callable[[str], None] = lambda message: None,
    report_every_s: float = 15.0,
) -> bool:
    """Block until the lifecycle node `target` reports `state`; False if stopped first.

    `node` creates the get_state client and must be spun by another thread. `report` is
    called every `report_every_s` seconds with what the wait is on: a wait is never silent.
    """
    client = node.create_client(GetState, f'{target}/get_state')
    started = time.monotonic()
    next_report = started + report_every_s
    current = 'not running yet'
    try:
        while not should_stop():
            if client.service_is_ready():
                current = query_state(client) or 'no answer to get_state'
                if current == state:
                    return True
            now = time.monotonic()
            if now >= next_report:
                report(
                    f'still waiting for {target} to be {state} after {now - started:.0f} s '
                    f'(state: {current})'
                )
                next_report = now + report_every_s
            time.sleep(POLL_PERIOD_S)
        return False
    finally:
        node.destroy_client(client)
