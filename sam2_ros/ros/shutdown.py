"""Clean shutdown of the package's node processes on SIGINT and SIGTERM.

rclpy's own signal handler shuts the ROS context down the moment SIGINT arrives, while the
tracking worker may still be publishing ("publisher's context is invalid"), and raises
KeyboardInterrupt wherever the main thread is. Ctrl-C under `ros2 launch` delivers SIGINT twice
(the terminal's to the whole process group, then launch's forwarded one), so the second
KeyboardInterrupt used to land in the cleanup and end the process with a traceback.

Here, once the node spins, a signal only asks the spin loop to stop; the caller then stops its
node and its threads while the context is still valid, and shuts the context down last. Before
that (a model loading at startup) the first signal raises KeyboardInterrupt, so a slow start can
still be cut short. Later signals are counted and otherwise ignored, so the cleanup always runs
to the end.
"""

from __future__ import annotations

import signal
import threading

import rclpy
from rclpy.executors import Executor
from rclpy.signals import SignalHandlerOptions

# How often the spin loop looks at the stop request, seconds.
POLL_PERIOD_S = 0.1


class StopRequest:
    """Set by SIGINT or SIGTERM; the spin loop ends once it is set.

    While `interrupt_first` is true (until the spin starts), the first signal also raises
    KeyboardInterrupt in the main thread.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self._event = threading.Event()
        self.signals_received = 0
        self.interrupt_first = True
        self._previous: dict[int, object] = {}

    def install(self) -> None:
        """Handle SIGINT and SIGTERM in this process (call from the main thread)."""
        for signum in self.SIGNALS:
            self._previous[signum] = signal.signal(signum, self._on_signal)

    def restore(self) -> None:
        """Put back the handlers that `install` replaced."""
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def _on_signal(self, signum: int, frame) -> None:
        del signum, frame
        self.signals_received += 1
        self._event.set()
        if self.interrupt_first and self.signals_received == 1:
            raise KeyboardInterrupt

    @property
    def requested(self) -> bool:
        """Whether a stop was asked for."""
        return self._event.is_set()


def init_rclpy(args: list[str] | None = None) -> StopRequest:
    """Initialise rclpy without its signal handlers; return the installed StopRequest."""
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    stop = StopRequest()
    stop.install()
    return stop


def spin_until_stopped(executor: Executor, stop: StopRequest) -> None:
    """Spin until a stop is requested or the context is shut down from elsewhere."""
    stop.interrupt_first = False
    while not stop.requested and executor.context.ok():
        executor.spin_once(timeout_sec=POLL_PERIOD_S)


def shutdown_rclpy(stop: StopRequest) -> None:
    """Shut the default context down; signals still arriving are ignored until the exit.

    Python's finalization puts every Python-level handler back to the C default, so a late
    Ctrl-C (launch forwards the terminal's, then escalates) would kill the finishing process
    with exit code -2 and no traceback; an ignored signal stays ignored to the end.
    """
    for signum in stop.SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    rclpy.try_shutdown()
