"""The frame buffer between image callbacks and the tracking worker, and the worker's prompts."""

import dataclasses

import numpy as np
import pytest

from sam2_ros.core.prompts import FrameError
from sam2_ros.tracker.worker import FrameBuffer, PromptRequest, TrackingWorker


class Header:
    stamp = None


def test_newest_frame_wins_and_replaced_frames_are_counted():
    buffer = FrameBuffer(history=3)
    frames = [np.full((2, 2, 3), i, np.uint8) for i in range(5)]
    for i, frame in enumerate(frames):
        buffer.put(frame, Header(), stamp_ns=i)
    taken = buffer.take(timeout=0.0)
    assert taken.stamp_ns == 4 and buffer.dropped == 4
    assert buffer.take(timeout=0.0) is None  # nothing queued behind it


def test_ring_keeps_the_last_frames_for_stamped_prompts():
    buffer = FrameBuffer(history=3)
    for i in range(5):
        buffer.put(np.zeros((2, 2, 3), np.uint8), Header(), stamp_ns=i * 1_000_000_000)
    assert buffer.find(1_000_000_000) is None
    found = buffer.find(3_000_000_000)
    assert found.sequence == 4
    assert [f.stamp_ns for f in buffer.span(3, 5)] == [2e9, 3e9, 4e9]
    assert 'the last 3 frames span stamps 2.000000000 to 4.000000000' in buffer.describe()
    buffer.clear()
    assert buffer.find(3_000_000_000) is None and 'no frame has been received' in buffer.describe()


class FailingPipeline:
    """A pipeline that cannot track any frame and must never be prompted."""

    def process(self, rgb, stamp):
        raise RuntimeError('CUDA out of memory')

    def poll(self):
        pass

    def drain(self, timeout=None):
        return True

    def submit_prompt(self, *args, **kwargs):
        raise AssertionError('prompted on a frame that was never tracked')


def test_a_prompt_on_a_frame_that_fails_to_track_is_refused_with_the_reason():
    buffer = FrameBuffer(history=3)
    published = []
    worker = TrackingWorker(FailingPipeline(), buffer, lambda frame, result: published.append(1))
    request = PromptRequest(obj_id=0, points=np.array([[1.0, 1.0]]), labels=np.array([1]))
    buffer.put(np.zeros((4, 4, 3), np.uint8), Header(), stamp_ns=5_000_000_000)
    worker.start()
    try:
        with pytest.raises(FrameError, match=r'tracking failed on frame 5\.000000000'):
            worker.submit_prompt(request).result(timeout=10)  # the newest frame (stamp 0)
        buffer.put(np.zeros((4, 4, 3), np.uint8), Header(), stamp_ns=6_000_000_000)
        stamped = dataclasses.replace(request, stamp_ns=6_000_000_000)
        with pytest.raises(FrameError, match=r'tracking failed on frame 6\.000000000'):
            worker.submit_prompt(stamped).result(timeout=10)
    finally:
        worker.stop()
    assert worker.failures == 2 and worker.latest is None and not published
    assert buffer.take(timeout=0.0) is None  # the failed frame is not taken a second time
