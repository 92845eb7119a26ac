"""Run an installed sam2_ros executable as a child process and watch its output.

Used by the demo, the rosbag tools and the tests: start the node, wait until it announces
readiness, stop it with SIGINT like a terminal would, and report its exit code.
"""

from __future__ import annotations

import collections
import os
import re
import signal
import subprocess
import threading
import time

from ament_index_python.packages import get_package_prefix


def installed_executable(name: str, package: str = 'sam2_ros') -> str:
    """Return the path of `ros2 run <package> <name>` in the current ament environment."""
    path = os.path.join(get_package_prefix(package), 'lib', package, name)
    if not os.access(path, os.X_OK):
        raise FileNotFoundError(f'{path} is not an executable; is {package} built?')
    return path


class NodeProcess:
    """A ROS node process whose merged stdout/stderr is collected line by line."""

    def __init__(self, command: list[str], env: dict | None = None, echo=None) -> None:
        self.command = command
        self._lines: collections.deque[str] = collections.deque(maxlen=10000)
        self._condition = threading.Condition()
        self._echo = echo
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            env=dict(os.environ if env is None else env),
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self._process.stdout:
            line = line.rstrip('\n')
            if self._echo is not None:
                self._echo(line)
            with self._condition:
                self._lines.append(line)
                self._condition.notify_all()
        with self._condition:
            self._condition.notify_all()

    @property
    def output(self) -> list[str]:
        """Every line the process printed so far."""
        with self._condition:
            return list(self._lines)

    @property
    def returncode(self) -> int | None:
        """Exit code, or None while running."""
        return self._process.poll()

    def wait_for(self, pattern: str, timeout: float) -> str:
        """Block until a line matches `pattern`; raise TimeoutError or RuntimeError if it dies."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = 0
        with self._condition:
            while True:
                lines = list(self._lines)
                for line in lines[seen:]:
                    if regex.search(line):
                        return line
                seen = len(lines)
                if self._process.poll() is not None and not self._reader.is_alive():
                    raise RuntimeError(
                        f'{self.command[0]} exited with code {self._process.returncode} '
                        f'before printing /{pattern}/; output:\n' + '\n'.join(lines[-40:])
                    )
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f'{self.command[0]} printed no line matching /{pattern}/ within '
                        f'{timeout:.0f} s; output:\n' + '\n'.join(lines[-40:])
                    )
                self._condition.wait(min(remaining, 0.5))

    def wait(self, timeout: float) -> int:
        """Wait for the process to exit by itself and return its exit code."""
        self._process.wait(timeout)
        self._reader.join(timeout=5.0)
        return self._process.returncode

    def interrupt(self, timeout: float = 15.0, times: int = 1, gap_s: float = 0.05) -> int:
        """Send SIGINT, wait for exit (SIGKILL after `timeout`) and return the exit code.

        `times` > 1 sends more SIGINTs `gap_s` apart, as a terminal's Ctrl-C under `ros2 launch`
        does (the terminal's, then launch's forwarded one).
        """
        if self._process.poll() is None:
            for index in range(times):
                if index:
                    time.sleep(gap_s)
                if self._process.poll() is None:
                    self._process.send_signal(signal.SIGINT)
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._reader.join(timeout=5.0)
        return self._process.returncode
