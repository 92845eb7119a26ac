"""The installed sam2_tracker_node executable, run as a separate process."""

import threading
import time

from builtin_interfaces.msg import Time
import numpy as np
from polling import spin_until
import pytest
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from sam2_ros.msg import TrackedObjectArray
from sam2_ros.ros.image_conversion import array_to_image_msg
from sam2_ros.ros.names import READY_MESSAGE
from sam2_ros.srv import AddPrompt

pytestmark = [pytest.mark.ros, pytest.mark.timeout(90)]


def test_starts_answers_with_source_header_and_exits_zero_on_sigint(tracker_process, make_node):
    process = tracker_process(
        'image_qos_reliability:=reliable',
        'image_qos_depth:=10',
        'untrained_models:=true',
        'sam2_image_size:=256',
        'device:=cpu',
    )
    process.wait_for(READY_MESSAGE, timeout=60)

    node, executor = make_node('node_process_test')
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    publisher = node.create_publisher(Image, 'image', qos)
    received = []
    node.create_subscription(TrackedObjectArray, 'tracked_objects', received.append, 10)
    assert spin_until(
        executor,
        lambda: (
            publisher.get_subscription_count() > 0
            and node.count_publishers('/tracked_objects') > 0
        ),
        timeout=20,
    )

    frame = np.full((24, 32, 3), 128, dtype=np.uint8)
    good = array_to_image_msg(frame, 'bgr8')
    good.header.stamp = Time(sec=1700000000, nanosec=123456789)
    good.header.frame_id = 'camera_optical_frame'
    bad = array_to_image_msg(frame, 'bgr8')
    bad.step = 5  # smaller than width * 3: must be dropped, not crash the node
    bad.header.frame_id = 'bad'
    for msg in (bad, good):
        publisher.publish(msg)
    assert spin_until(executor, lambda: received, timeout=20)
    spin_until(executor, lambda: False, timeout=0.5)  # a late answer to `bad` would show

    assert [m.header.frame_id for m in received] == ['camera_optical_frame']
    answer = received[0]
    assert answer.header.stamp == good.header.stamp
    assert (answer.image_width, answer.image_height) == (32, 24)
    process.wait_for('dropped invalid image.*step 5 is smaller', timeout=10)
    assert process.returncode is None, 'the node must survive a malformed image'

    assert process.interrupt() == 0


def test_invalid_parameter_fails_configure_and_the_node_stays_up(tracker_process):
    process = tracker_process('image_qos_reliability:=sometimes', 'untrained_models:=true')
    process.wait_for(
        'configure failed: image_qos_reliability must be one of best_effort, reliable; '
        "got 'sometimes'",
        timeout=30,
    )
    process.wait_for('the node stays unconfigured', timeout=10)
    assert process.returncode is None, 'a configure failure must not end the process'
    assert process.interrupt() == 0


def test_undeclarable_parameter_exits_with_code_2(tracker_process):
    process = tracker_process('image_qos_depth:=0')  # outside the declared range
    process.wait_for('invalid parameters', timeout=30)
    assert process.wait(timeout=30) == 2


class Camera:
    """Publishes frames to the node process from a thread until stopped."""

    def __init__(self, make_node) -> None:
        self.node, self.executor = make_node('sigint_camera')
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.publisher = self.node.create_publisher(Image, 'image', qos)
        self.received = []
        self.node.create_subscription(
            TrackedObjectArray, 'tracked_objects', self.received.append, 10
        )
        self._frame = np.full((48, 64, 3), 90, dtype=np.uint8)
        self._frame[10:30, 20:40] = 220

    def stream_until_answered(self, answers: int, timeout: float = 60) -> None:
        """Publish a frame every 50 ms until the node answered `answers` of them."""
        assert spin_until(
            self.executor, lambda: self.publisher.get_subscription_count() > 0, timeout=20
        )
        deadline = time.monotonic() + timeout
        sec = 1
        while len(self.received) < answers:
            assert time.monotonic() < deadline, f'{len(self.received)} answers in {timeout} s'
            msg = array_to_image_msg(self._frame, 'bgr8')
            msg.header.stamp = Time(sec=sec)
            self.publisher.publish(msg)
            sec += 1
            spin_until(self.executor, lambda: False, timeout=0.05)

    def keep_streaming(self) -> threading.Event:
        """Go on publishing from a thread (the node is busy when the signals come)."""
        stop = threading.Event()

        def run() -> None:
            sec = 10000
            while not stop.wait(0.03):
                msg = array_to_image_msg(self._frame, 'bgr8')
                msg.header.stamp = Time(sec=sec)
                self.publisher.publish(msg)
                sec += 1

        threading.Thread(target=run, daemon=True).start()
        return stop


def assert_clean_exit(process, code: int) -> None:
    output = '\n'.join(process.output)
    assert code == 0, output[-3000:]
    for sign in ('Traceback', 'KeyboardInterrupt', 'RCLError', 'context is invalid'):
        assert sign not in output, output[-3000:]


# Eight, 0.15 s apart, outlast the cleanup: the late ones reach the process while Python
# finalizes, after which only an ignored signal is harmless (it died of them, exit -2).
SIGNAL_SERIES = [(1, 0.05), (2, 0.05), (8, 0.15)]
SERIES_IDS = ['sigint_once', 'sigint_twice', 'sigint_through_the_exit']


@pytest.mark.parametrize(('signals', 'gap_s'), SIGNAL_SERIES, ids=SERIES_IDS)
def test_sigint_while_streaming_exits_zero_without_traceback(
    tracker_process, make_node, signals, gap_s
):
    process = tracker_process(
        'image_qos_reliability:=reliable',
        'untrained_models:=true',
        'sam2_image_size:=256',
        'device:=cpu',
        "detector_model:=''",
        'keyframe_interval:=1',
    )
    process.wait_for(READY_MESSAGE, timeout=60)
    camera = Camera(make_node)
    camera.stream_until_answered(3)
    client = camera.node.create_client(AddPrompt, '/sam2_tracker/add_prompt')
    assert client.wait_for_service(timeout_sec=20)
    future = client.call_async(AddPrompt.Request(box=[20.0, 10.0, 40.0, 30.0]))
    assert spin_until(camera.executor, future.done, timeout=60)
    assert future.result().success, future.result().message
    object_id = future.result().object_id
    answered = len(camera.received)
    camera.stream_until_answered(answered + 2)
    assert object_id in [o.id for o in camera.received[-1].objects]
    stop = camera.keep_streaming()
    try:
        time.sleep(0.3)
        assert_clean_exit(process, process.interrupt(timeout=30, times=signals, gap_s=gap_s))
    finally:
        stop.set()


@pytest.mark.parametrize(('signals', 'gap_s'), SIGNAL_SERIES, ids=SERIES_IDS)
def test_sigint_on_the_console_exits_zero_without_traceback(signals, gap_s):
    from sam2_ros.ros.node_process import NodeProcess, installed_executable

    process = NodeProcess(
        [installed_executable('sam2_web_console'), '--ros-args', '-p', 'port:=0']
    )
    try:
        process.wait_for('http://127.0.0.1:', timeout=60)
    finally:
        code = process.interrupt(timeout=30, times=signals, gap_s=gap_s)
    assert_clean_exit(process, code)
