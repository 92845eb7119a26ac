"""Names the tracker node shares with its clients (the console, the tools, the tests)."""

from __future__ import annotations

# The log line the tracker prints once it is active, what scripts wait for.
READY_MESSAGE = 'sam2_tracker ready'


def status_name(node_name: str) -> str:
    """Return the DiagnosticStatus name of a tracker node (its fully qualified name)."""
    return f'{node_name}: tracking'
