"""Counters and timings of the node, summarised as a diagnostic_msgs/DiagnosticStatus.

Rates are measured over a sliding window; latency is from the arrival of an image at the node
to the publication of its tracked objects (queueing, decoding, the pipeline, encoding and
publishing included), as p50 and p95 over the last `LATENCY_WINDOW` frames.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
import threading
import time

import numpy as np

RATE_WINDOW_S = 5.0
LATENCY_WINDOW = 300


class RateMeter:
    """Events per second over the last `window` seconds."""

    def __init__(self, window: float = RATE_WINDOW_S) -> None:
        """Count events in a sliding window of `window` seconds."""
        self.window = window
        self._times: collections.deque[float] = collections.deque()

    def tick(self, now: float) -> None:
        """Record one event at `now` (time.perf_counter seconds)."""
        self._times.append(now)
        self._trim(now)

    def rate(self, now: float) -> float:
        """Return events per second over the window ending at `now`."""
        self._trim(now)
        if len(self._times) < 2:
            return 0.0
        span = max(now - self._times[0], 1e-6)
        return (len(self._times) - 1) / span if span < self.window else len(self._times) / span

    def _trim(self, now: float) -> None:
        while self._times and self._times[0] < now - self.window:
            self._times.popleft()


@dataclass(frozen=True)
class Snapshot:
    """The node's counters at one moment."""

    received: int
    invalid: int
    published: int
    input_hz: float
    output_hz: float
    latency_p50_ms: float
    latency_p95_ms: float
    pipeline_p50_ms: float
    overhead_p50_ms: float  # latency minus the pipeline's own compute


class NodeStats:
    """Thread-safe counters updated by the image callback and the worker."""

    def __init__(self) -> None:
        """Start every counter at zero."""
        self._lock = threading.Lock()
        self._input = RateMeter()
        self._output = RateMeter()
        self._latency: collections.deque[float] = collections.deque(maxlen=LATENCY_WINDOW)
        self._pipeline: collections.deque[float] = collections.deque(maxlen=LATENCY_WINDOW)
        self.received = 0
        self.invalid = 0
        self.published = 0

    def image_received(self) -> None:
        """Count an image message (valid or not)."""
        with self._lock:
            self.received += 1
            self._input.tick(time.perf_counter())

    def image_invalid(self) -> int:
        """Count an invalid image; return the total."""
        with self._lock:
            self.invalid += 1
            return self.invalid

    def frame_published(self, received: float, pipeline_ms: float) -> None:
        """Record a published frame that arrived at `received` (perf_counter seconds)."""
        now = time.perf_counter()
        with self._lock:
            self.published += 1
            self._output.tick(now)
            self._latency.append(1000.0 * (now - received))
            self._pipeline.append(pipeline_ms)

    def snapshot(self) -> Snapshot:
        """Return the current counters, rates and latency percentiles."""
        now = time.perf_counter()
        with self._lock:
            latency = np.array(self._latency) if self._latency else np.zeros(1)
            pipeline = np.array(self._pipeline) if self._pipeline else np.zeros(1)
            return Snapshot(
                received=self.received,
                invalid=self.invalid,
                published=self.published,
                input_hz=self._input.rate(now),
                output_hz=self._output.rate(now),
                latency_p50_ms=float(np.percentile(latency, 50)),
                latency_p95_ms=float(np.percentile(latency, 95)),
                pipeline_p50_ms=float(np.percentile(pipeline, 50)),
                overhead_p50_ms=float(np.percentile(latency - pipeline, 50)),
            )


class DepthStats:
    """Counters of the depth input: invalid images, refused frames and the latest refusal."""

    def __init__(self) -> None:
        """Start every counter at zero."""
        self._lock = threading.Lock()
        self.invalid = 0
        self.refused = 0
        self.problem = ''  # why the latest frame's depth was refused; '' once one fits again

    def image_invalid(self) -> int:
        """Count a depth image that could not be decoded; return the total."""
        with self._lock:
            self.invalid += 1
            return self.invalid

    def refuse(self, reason: str) -> bool:
        """Count a frame whose depth did not fit; True when the reason is new (log it once)."""
        with self._lock:
            self.refused += 1
            new = reason != self.problem
            self.problem = reason
            return new

    def fitted(self) -> None:
        """Record that a frame's depth fitted: the refusal, if any, is over."""
        with self._lock:
            self.problem = ''

    def values(self, paired: int, unpaired: int) -> dict[str, object]:
        """Return the diagnostic values of the depth input."""
        with self._lock:
            return {
                'depth_frames_paired': paired,
                'depth_frames_unpaired': unpaired,
                'depth_frames_refused': self.refused,
                'depth_images_invalid': self.invalid,
                'depth_problem': self.problem or 'none',
            }


def diagnostic_status(
    name: str,
    hardware_id: str,
    lifecycle_state: str,
    problem: str,
    snapshot: Snapshot,
    values: dict[str, object],
    untrained: bool,
    warnings: tuple[str, ...] = (),
):
    """Build the DiagnosticStatus: ERROR on `problem`, WARN on warnings or stalls."""
    from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

    messages, level = [], DiagnosticStatus.OK
    if problem:
        level = DiagnosticStatus.ERROR
        messages.append(problem)
    if untrained:
        level = max(level, DiagnosticStatus.WARN)
        messages.append('UNTRAINED model weights: outputs are meaningless')
    for warning in warnings:
        level = max(level, DiagnosticStatus.WARN)
        messages.append(warning)
    if lifecycle_state == 'active' and snapshot.received and snapshot.input_hz == 0.0:
        level = max(level, DiagnosticStatus.WARN)
        messages.append(f'no image in the last {RATE_WINDOW_S:.0f} s')
    if not messages:
        messages.append('tracking' if lifecycle_state == 'active' else lifecycle_state)
    fields = {
        'lifecycle_state': lifecycle_state,
        'input_rate_hz': f'{snapshot.input_hz:.2f}',
        'output_rate_hz': f'{snapshot.output_hz:.2f}',
        'latency_p50_ms': f'{snapshot.latency_p50_ms:.1f}',
        'latency_p95_ms': f'{snapshot.latency_p95_ms:.1f}',
        'pipeline_p50_ms': f'{snapshot.pipeline_p50_ms:.1f}',
        'node_overhead_p50_ms': f'{snapshot.overhead_p50_ms:.2f}',
        'images_received': str(snapshot.received),
        'images_invalid': str(snapshot.invalid),
        'frames_published': str(snapshot.published),
        'untrained_weights': str(untrained).lower(),
    }
    fields.update({key: str(value) for key, value in values.items()})
    return DiagnosticStatus(
        level=level,
        name=name,
        message='; '.join(messages),
        hardware_id=hardware_id,
        values=[KeyValue(key=k, value=v) for k, v in fields.items()],
    )
