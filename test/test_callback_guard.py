"""The callback guard: exceptions are logged, counted and answered, never raised."""

from __future__ import annotations

import asyncio
import inspect

import pytest

from sam2_ros.ros.callback_guard import CallbackGuard, failed_service_response
from sam2_ros.srv import RemoveObject

pytestmark = pytest.mark.ros


class RecordingLogger:
    def __init__(self) -> None:
        self.errors: list[str] = []

    def error(self, message: str, **_) -> None:
        self.errors.append(message)

    def debug(self, message: str, **_) -> None:
        pass


def test_an_exception_is_logged_counted_and_swallowed():
    logger = RecordingLogger()
    guard = CallbackGuard(logger)
    calls = []

    def _on_image(msg) -> None:
        calls.append(msg)
        raise KeyError('stamp')

    guarded = guard(_on_image)
    assert guarded('a') is None and guarded('b') is None
    assert calls == ['a', 'b'] and guard.errors == 2
    assert guard.last_error == "on_image: KeyError: 'stamp'"
    assert 'on_image failed unexpectedly (2 callback errors so far)' in logger.errors[-1]
    assert "KeyError: 'stamp'" in logger.errors[-1]


def test_results_pass_through_and_a_service_gets_an_answer():
    guard = CallbackGuard(RecordingLogger())
    assert guard(lambda x: x + 1)(1) == 2

    def broken(request, response):
        raise ValueError('boom')

    response = guard(broken, failed_service_response)(
        RemoveObject.Request(), RemoveObject.Response()
    )
    assert response.success is False
    assert response.message == 'internal error (see the log): ValueError: boom'
    assert guard.errors == 1


def test_coroutine_callbacks_stay_coroutines_for_the_executor():
    guard = CallbackGuard(RecordingLogger())

    async def service(request, response):
        raise RuntimeError('late')

    guarded = guard(service, failed_service_response)
    assert inspect.iscoroutinefunction(guarded)
    response = asyncio.run(guarded(RemoveObject.Request(), RemoveObject.Response()))
    assert not response.success and 'RuntimeError: late' in response.message
    assert guard.errors == 1
