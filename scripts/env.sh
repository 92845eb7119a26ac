# Source this file (bash) to use the set-up environment: the venv with the ROS 2 Kilted wheels
# and the colcon install of sam2_ros (`source scripts/env.sh`). Run scripts/setup.sh first.
_sam2_ros_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ ! -f "$_sam2_ros_root/install/setup.bash" || ! -x "$_sam2_ros_root/.venv/bin/python" ]]; then
    echo "sam2_ros: not set up yet; run $_sam2_ros_root/scripts/setup.sh" >&2
    return 1 2>/dev/null || exit 1
fi
# shellcheck disable=SC1091
source "$_sam2_ros_root/.venv/bin/activate"
_sam2_ros_venv="$(cd "$_sam2_ros_root/.venv" && pwd -P)"
export AMENT_PREFIX_PATH="$_sam2_ros_venv${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
export CMAKE_PREFIX_PATH="$_sam2_ros_venv${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
# colcon's setup scripts read unset variables; relax `set -u` while sourcing them.
_sam2_ros_nounset="$(set +o | grep nounset)"
set +u
# shellcheck disable=SC1091
source "$_sam2_ros_root/install/setup.bash"
eval "$_sam2_ros_nounset"
unset _sam2_ros_root _sam2_ros_venv _sam2_ros_nounset
