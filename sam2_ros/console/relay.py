"""Tracker service calls from the console's asyncio loop, without blocking either side.

rclpy's `call_async` future settles in the ROS executor's thread; `call_service` relays it
into an asyncio future of the calling loop with `call_soon_threadsafe`, so the loop never
waits on the executor and the executor never waits on the loop.
"""

from __future__ import annotations

import asyncio

from sam2_ros.console.protocol import ConsoleError


async def call_service(client, service: str, request, what: str, timeout: float):
    """Call `client` (an rclpy service client) and return its response.

    `service` is its resolved name and `what` the action, for messages. Raises ConsoleError
    ('unavailable') when the service is not ready or does not answer within `timeout` s.
    """
    if not client.service_is_ready():
        raise ConsoleError(
            f'cannot {what}: {service} is not available (is sam2_tracker running '
            f"and is the console's tracker parameter its name?)",
            'unavailable',
        )
    loop = asyncio.get_running_loop()
    answer = loop.create_future()

    def settle(done) -> None:
        if answer.done():
            return
        if done.cancelled():
            answer.cancel()
        elif done.exception() is not None:
            answer.set_exception(done.exception())
        else:
            answer.set_result(done.result())

    def relay(done) -> None:  # runs in the ROS executor's thread
        try:
            loop.call_soon_threadsafe(settle, done)
        except RuntimeError:  # the loop has closed
            pass

    ros_future = client.call_async(request)
    ros_future.add_done_callback(relay)
    try:
        return await asyncio.wait_for(answer, timeout)
    except asyncio.TimeoutError:
        client.remove_pending_request(ros_future)
        raise ConsoleError(
            f'cannot {what}: {service} did not answer within {timeout:g} s', 'unavailable'
        ) from None
