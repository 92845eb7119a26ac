"""An in-process sam2_tracker node with real (untrained) models and a client node.

The tracker runs on a MultiThreadedExecutor in a background thread, exactly as `main` runs
it; the test talks to it only through topics and services, from a second node.
"""

from __future__ import annotations

import itertools
import threading

from builtin_interfaces.msg import Time
import numpy as np
from polling import wait_for
import rclpy
import rclpy.context
from rclpy.executors import MultiThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from tracker_fixtures import IMAGE_SIZE

from sam2_ros.ros.image_conversion import array_to_image_msg

TEST_PARAMETERS = {
    'untrained_models': True,
    'sam2_image_size': IMAGE_SIZE,
    'device': 'cpu',
    'image_qos_reliability': 'reliable',
    'image_qos_depth': 10,
    'diagnostics_period_sec': 0.2,
    # SAM 2 inside the frame loop: these tests check what lands on which frame exactly; the
    # asynchronous modes have tests of their own (test_tracker_node_async.py).
    'keyframe_mode': 'sync',
}


_NAMESPACES = itertools.count(1)


class TrackerHarness:
    """The tracker node and a client node on one executor thread, in a private context.

    Each harness has its own namespace, so harnesses alive at the same time (a module-scoped
    one and a test's own) never answer each other's services or topics.
    """

    def __init__(self, **overrides) -> None:
        """Start the node with the test parameters plus `overrides`."""
        from sensor_msgs.msg import Image

        from sam2_ros.msg import TrackedObjectArray
        from sam2_ros.tracker.node import TrackerNode

        self.context = rclpy.context.Context()
        rclpy.init(context=self.context)
        parameters = {**TEST_PARAMETERS, **overrides}
        self.namespace = f'/tracker_test_{next(_NAMESPACES)}'
        self.node = TrackerNode(
            context=self.context,
            namespace=self.namespace,
            parameter_overrides=[Parameter(k, value=v) for k, v in parameters.items()],
        )
        self.client = rclpy.create_node(
            'tracker_test_client', namespace=self.namespace, context=self.context
        )
        self.executor = MultiThreadedExecutor(num_threads=4, context=self.context)
        self.executor.add_node(self.node)
        self.executor.add_node(self.client)
        self._thread = threading.Thread(target=self.executor.spin, daemon=True)
        self._thread.start()
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.image_pub = self.client.create_publisher(Image, 'image', qos)
        self._lock = threading.Lock()
        self.outputs: list = []
        self.client.create_subscription(
            TrackedObjectArray, 'tracked_objects', self._store('outputs'), 10
        )
        self._clients = {}

    def _store(self, name):
        def callback(msg) -> None:
            with self._lock:
                getattr(self, name).append(msg)

        return callback

    def subscribe(self, msg_type, topic: str) -> list:
        """Collect the messages of `topic` into the returned list."""
        received: list = []
        self.client.create_subscription(msg_type, topic, received.append, 10)
        return received

    def diagnostics(self, received: list) -> dict | None:
        """Return this node's latest /diagnostics status as a dict, or None."""
        name = f'{self.namespace}/sam2_tracker: tracking'
        for array in reversed(list(received)):
            for status in array.status:
                if status.name == name:
                    return {'level': status.level, 'message': status.message} | {
                        kv.key: kv.value for kv in status.values
                    }
        return None

    def call(self, srv_type, name: str, request, timeout: float = 60.0):
        """Call a service of the tracker (name relative to the node) and return the response."""
        client = self._clients.get(name)
        if client is None:
            client = self._clients[name] = self.client.create_client(
                srv_type, f'{self.namespace}/sam2_tracker/{name}'
            )
        assert client.wait_for_service(timeout_sec=10.0), f'{name} is not available'
        future = client.call_async(request)
        assert wait_for(future.done, timeout), f'{name} did not answer within {timeout} s'
        return future.result()

    def wait_connected(self) -> None:
        """Wait until the image publisher and the output subscription are matched."""
        assert wait_for(
            lambda: (
                self.image_pub.get_subscription_count() > 0
                and self.client.count_publishers(f'{self.namespace}/tracked_objects') > 0
            )
        )

    def publish(self, frame: np.ndarray, sec: int, encoding: str = 'rgb8', frame_id='camera'):
        """Publish one RGB frame stamped `sec` seconds; return the stamp."""
        if encoding == 'bgr8':
            frame = frame[:, :, ::-1]
        msg = array_to_image_msg(np.ascontiguousarray(frame), encoding)
        msg.header.stamp = Time(sec=sec, nanosec=0)
        msg.header.frame_id = frame_id
        self.image_pub.publish(msg)
        return msg.header.stamp

    def output_for(self, sec: int, timeout: float = 30.0):
        """Wait for the tracked_objects message of the frame stamped `sec`; return it."""
        found = []

        def seen() -> bool:
            with self._lock:
                found[:] = [m for m in self.outputs if m.header.stamp.sec == sec]
            return bool(found)

        assert wait_for(seen, timeout), f'no tracked_objects for the frame stamped {sec}'
        return found[0]

    def feed(self, frames, first_sec: int) -> list:
        """Publish frames one by one, each after the previous one's output; return outputs."""
        return [
            self.output_for(self.publish(frame, first_sec + i).sec)
            for i, frame in enumerate(frames)
        ]

    def close(self) -> None:
        """Stop the node, the executor and the context."""
        self.node.stop_tracking()
        self.executor.shutdown(timeout_sec=2.0)
        self.node.destroy_node()
        self.client.destroy_node()
        rclpy.try_shutdown(context=self.context)
