"""Route the package's Python `logging` records to a node's rclpy logger (and so to /rosout).

The ROS-free core (model loading, the detector) and the tracking worker log with Python's
`logging`, which ROS tools never see: its records went to stderr only, without a node name or
a severity that `rqt_console` or `ros2 topic echo /rosout` show. A node installs this bridge on
the `sam2_ros` logger hierarchy; every record below it reaches the node's logger with the
matching severity, whatever module logs it.
"""

from __future__ import annotations

import logging

PACKAGE_LOGGER = 'sam2_ros'


class RosLogHandler(logging.Handler):
    """A logging.Handler that forwards each record to an rclpy logger."""

    def __init__(self, ros_logger) -> None:
        super().__init__(logging.DEBUG)
        self.ros_logger = ros_logger

    def emit(self, record: logging.LogRecord) -> None:
        """Log the record's message (and exception) at the matching rclpy severity."""
        try:
            message = f'[{record.name}] {record.getMessage()}'
            if record.exc_info and record.exc_info[1] is not None:
                error = record.exc_info[1]
                message += f': {type(error).__name__}: {error}'
            # One call per severity: rclpy refuses a call site whose severity changes.
            logger, level = self.ros_logger, record.levelno
            if level >= logging.CRITICAL:
                logger.fatal(message)
            elif level >= logging.ERROR:
                logger.error(message)
            elif level >= logging.WARNING:
                logger.warning(message)
            elif level >= logging.INFO:
                logger.info(message)
            else:
                logger.debug(message)
        except Exception:  # noqa: BLE001 - logging must never raise into the caller
            self.handleError(record)


def route_package_logging(ros_logger) -> RosLogHandler:
    """Send the `sam2_ros` Python log records to `ros_logger` instead of stderr.

    Replaces a bridge installed earlier (the newest node in a process gets the records).
    """
    package = logging.getLogger(PACKAGE_LOGGER)
    for handler in list(package.handlers):
        if isinstance(handler, RosLogHandler):
            package.removeHandler(handler)
    bridge = RosLogHandler(ros_logger)
    package.addHandler(bridge)
    package.setLevel(logging.DEBUG)  # the rclpy logger's level filters
    package.propagate = False  # printed once, by rclpy, not again by the root logger
    return bridge
