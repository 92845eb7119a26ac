"""A safety net around ROS callbacks: an unexpected exception is logged and counted, not fatal.

rclpy's executors re-raise a callback's exception out of `spin()`, which ends the process.
Inputs are validated where they enter; this guard catches what validation missed, so one
bad message or request from anywhere on the DDS graph never stops the node. The guarded
callback's own work is abandoned at the point it raised; nothing else is touched.
"""

from __future__ import annotations

from collections.abc import Callable
import functools
import inspect
import threading
import traceback
from typing import Any

# How often the same kind of failure is logged at most (the count is always exact).
LOG_THROTTLE_SEC = 5.0


class CallbackGuard:
    """Wraps callbacks so an exception is logged (throttled) and counted instead of raised."""

    def __init__(self, logger) -> None:
        """Log through `logger` (an rclpy logger)."""
        self._logger = logger
        self._lock = threading.Lock()
        self.errors = 0  # exceptions caught so far
        self.last_error = ''  # 'callback: Type: message' of the latest one

    def __call__(self, callback: Callable, fallback: Callable[..., Any] | None = None):
        """Return `callback` guarded; on an exception it returns `fallback(reason, *args)`.

        Without `fallback` the guarded callback returns None. Coroutine functions stay
        coroutine functions, so an executor still awaits them.
        """
        name = getattr(callback, '__name__', repr(callback)).lstrip('_')

        def recover(error: Exception, args: tuple):
            reason = self._record(name, error)
            return fallback(reason, *args) if fallback is not None else None

        if inspect.iscoroutinefunction(callback):

            @functools.wraps(callback)
            async def guarded_async(*args):
                try:
                    return await callback(*args)
                except Exception as error:  # noqa: BLE001 - the safety net itself
                    return recover(error, args)

            return guarded_async

        @functools.wraps(callback)
        def guarded(*args):
            try:
                return callback(*args)
            except Exception as error:  # noqa: BLE001 - the safety net itself
                return recover(error, args)

        return guarded

    def _record(self, name: str, error: Exception) -> str:
        reason = f'{type(error).__name__}: {error}'
        with self._lock:
            self.errors += 1
            count = self.errors
            self.last_error = f'{name}: {reason}'
        self._logger.error(
            f'{name} failed unexpectedly ({count} callback errors so far), the node keeps '
            f'running: {reason}',
            throttle_duration_sec=LOG_THROTTLE_SEC,
        )
        self._logger.debug(''.join(traceback.format_exception(error)))
        return reason


def failed_service_response(reason: str, request, response):
    """Fill a service response that has `success` and `message` with an internal failure."""
    if hasattr(response, 'success'):
        response.success = False
    if hasattr(response, 'message'):
        response.message = f'internal error (see the log): {reason}'
    return response
