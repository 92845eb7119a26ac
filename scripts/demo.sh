#!/usr/bin/env bash
# The main job, from any state: sets up (idempotent), then runs the installed sam2_demo: build a
# bag with ground truth, track it with the node, evaluate, render a video (arguments: `--help`).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh"
# shellcheck disable=SC1091
source "$ROOT/scripts/env.sh"
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
cd "$ROOT"
exec "$ROOT/install/sam2_ros/lib/sam2_ros/sam2_demo" "$@"
