# Source this file (bash) to use the set-up environment: the venv with the ROS 2 wheels and the
# colcon install of sam2_ros (`source scripts/env.sh`). Run scripts/setup.sh first. With
# SAM2_ROS_DISTRO=jazzy it uses the Jazzy set-up (.venv-jazzy, install-jazzy/) instead of
# Kilted's (.venv, install/).
_sam2_ros_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
case "${SAM2_ROS_DISTRO:-kilted}" in
    kilted) _sam2_ros_suffix="";;
    jazzy) _sam2_ros_suffix="-jazzy";;
    *) echo "sam2_ros: SAM2_ROS_DISTRO must be kilted or jazzy" >&2; return 1 2>/dev/null || exit 1;;
esac
if [[ ! -f "$_sam2_ros_root/install$_sam2_ros_suffix/setup.bash" \
        || ! -x "$_sam2_ros_root/.venv$_sam2_ros_suffix/bin/python" ]]; then
    echo "sam2_ros: not set up yet; run $_sam2_ros_root/scripts/setup.sh" >&2
    return 1 2>/dev/null || exit 1
fi
# shellcheck disable=SC1090
source "$_sam2_ros_root/.venv$_sam2_ros_suffix/bin/activate"
_sam2_ros_venv="$(cd "$_sam2_ros_root/.venv$_sam2_ros_suffix" && pwd -P)"
export AMENT_PREFIX_PATH="$_sam2_ros_venv${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
export CMAKE_PREFIX_PATH="$_sam2_ros_venv${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
# colcon's setup scripts read unset variables; relax `set -u` while sourcing them.
_sam2_ros_nounset="$(set +o | grep nounset)"
set +u
# shellcheck disable=SC1090
source "$_sam2_ros_root/install$_sam2_ros_suffix/setup.bash"
eval "$_sam2_ros_nounset"
# The package's executables (sam2_replay, sam2_make_bag, ...) by name, as `ros2 run` finds
# them: there is no ros2 command in the pip-wheel environment.
export PATH="$_sam2_ros_root/install$_sam2_ros_suffix/sam2_ros/lib/sam2_ros:$PATH"
unset _sam2_ros_root _sam2_ros_venv _sam2_ros_nounset _sam2_ros_suffix
