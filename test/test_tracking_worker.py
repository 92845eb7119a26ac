"""The frame buffer between image callbacks and the tracking worker."""

import numpy as np

from sam2_ros.ros.tracking_worker import FrameBuffer


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
