#!/usr/bin/env bash
# The whole test suite, from any state: sets up (idempotent), then runs pytest.
# Extra arguments go to pytest, e.g. `scripts/test.sh -k rle -x`.
# Every ROS process the suite starts is confined to localhost with a private ROS_DOMAIN_ID
# (test/conftest.py); the same is set here for anything started before pytest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh"
# shellcheck disable=SC1091
source "$ROOT/scripts/env.sh"
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
# Humble reads only ROS_LOCALHOST_ONLY (test/conftest.py sets both as well).
[[ "${ROS_DISTRO:-}" == humble ]] && export ROS_LOCALHOST_ONLY=1
cd "$ROOT"
exec python -m pytest "$@"
