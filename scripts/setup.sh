#!/usr/bin/env bash
# Set up everything sam2_ros needs on a Debian 12 / Python 3.11 machine without an apt ROS:
# a virtual environment with the ROS 2 wheels of one distribution (Kilted by default, or Jazzy),
# the interface build toolchain, PyTorch, SAM 2, Ultralytics and the test tools, then a colcon
# build of this package. Idempotent: with nothing changed, a second run takes seconds.
#
# Kilted uses .venv, build/, install/ and log/; Jazzy uses .venv-jazzy, build-jazzy/,
# install-jazzy/ and log-jazzy/, so both can be set up in one checkout (CI tests both).
#
# The venv itself lives outside the source tree (CMake refuses to export include paths that
# point into the source directory, and the generated interface targets export numpy's); the
# repository's .venv is a symlink to it.
#
# Environment: SAM2_ROS_DISTRO (kilted, the default, or jazzy),
#              PYTHON (interpreter for the venv, default python3),
#              SAM2_ROS_VENV (venv location, default ~/.cache/sam2_ros/venv-<hash of this path>,
#              with a -jazzy suffix for Jazzy).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROOT_HASH="$(printf '%s' "$ROOT" | sha256sum | cut -c1-12)"
DISTRO="${SAM2_ROS_DISTRO:-kilted}"
case "$DISTRO" in
    kilted) SUFFIX="";;
    jazzy) SUFFIX="-jazzy";;
    *) printf '[setup] error: SAM2_ROS_DISTRO must be kilted or jazzy, got %s\n' "$DISTRO" >&2; exit 1;;
esac
VENV="${SAM2_ROS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/sam2_ros/venv-$ROOT_HASH$SUFFIX}"
PYTHON="${PYTHON:-python3}"
# Pins shared by every distribution, and the distribution's own ROS wheels.
CONSTRAINTS="$ROOT/requirements/constraints.txt"
ROS_CONSTRAINTS="$ROOT/requirements/constraints-$DISTRO.txt"
ROS_WHEELS="$ROOT/requirements/ros-$DISTRO-wheels.txt"
STAMP="$VENV/.sam2_ros-requirements.sha256"

log() { printf '[setup] %s\n' "$*"; }

# One setup at a time per checkout (concurrent colcon builds of one tree break each other).
LOG_DIR="$ROOT/log$SUFFIX"
mkdir -p "$LOG_DIR"
exec 9> "$LOG_DIR/.setup.lock"
flock -w 900 9 || { echo "[setup] error: another setup.sh holds $LOG_DIR/.setup.lock" >&2; exit 1; }
# pip warns once per package about find-links folders of the machine's pip configuration that
# do not exist; keep its output to what matters.
quiet_pip() { "$@" 2> >(grep -v "^WARNING: Location 'file://.*' is ignored" >&2); }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

# --- 1. system tools: a C/C++ compiler and make (for the generated interface libraries),
#        the Python headers, venv ------------------------------------------------------------
missing=()
command -v cc >/dev/null 2>&1 || missing+=(build-essential)
command -v c++ >/dev/null 2>&1 || missing+=(build-essential)
command -v make >/dev/null 2>&1 || missing+=(build-essential)
"$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
"$PYTHON" - <<'PY' >/dev/null 2>&1 || missing+=(python3-dev)
import os, sys, sysconfig
sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()['include'], 'Python.h')))
PY
if ((${#missing[@]})); then
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        log "installing Debian packages: ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${missing[@]}" >/dev/null
    else
        die "missing system packages: ${missing[*]} (install them with apt-get as root)"
    fi
fi

# Real footage and photographs for the semi-synthetic test sequences (Debian's opencv-doc).
# Optional: without it the sequence generator falls back to generated textures and says so.
OPENCV_DATA=/usr/share/doc/opencv-doc/examples/data
if [[ ! -f "$OPENCV_DATA/vtest.avi" ]]; then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        log "installing Debian opencv-doc (real videos and photographs for test sequences)"
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            --no-install-recommends opencv-doc >/dev/null; } \
            || log "warning: opencv-doc could not be installed; test sequences use generated textures"
    else
        log "note: opencv-doc is not installed (apt-get install opencv-doc as root for real footage)"
    fi
fi

# Headless Chromium and its WebDriver for the browser console tests (Debian's builds: no
# browser is ever downloaded by Selenium or anything else).
if [[ ! -x /usr/bin/chromium || ! -x /usr/bin/chromedriver ]]; then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        log "installing Debian chromium and chromium-driver (browser console tests)"
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            --no-install-recommends chromium chromium-driver >/dev/null; } \
            || log "warning: chromium could not be installed; the browser console tests will fail"
    else
        log "note: the browser console tests need chromium and chromium-driver (apt-get install as root)"
    fi
fi

py_version="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
[[ "$py_version" == "3.11" ]] || die "the ROS 2 $DISTRO wheels are built for CPython 3.11; \
$PYTHON is $py_version (set PYTHON=python3.11)"

# --- 2. virtual environment ------------------------------------------------------------------
if [[ ! -x "$VENV/bin/python" ]]; then
    log "creating $VENV"
    mkdir -p "$(dirname "$VENV")"
    "$PYTHON" -m venv "$VENV"
fi
VENV="$(cd "$VENV" && pwd -P)"
case "$VENV/" in
    "$ROOT"/*) die "SAM2_ROS_VENV must be outside the source tree ($ROOT)";;
esac
if [[ -e "$ROOT/.venv$SUFFIX" && ! -L "$ROOT/.venv$SUFFIX" ]]; then
    die "$ROOT/.venv$SUFFIX exists and is not a symlink; remove it (the venv lives in $VENV)"
fi
ln -sfn "$VENV" "$ROOT/.venv$SUFFIX"
VPY="$VENV/bin/python"

# --- 3. Python packages, only when a requirement file changed --------------------------------
wanted="$(cat "$CONSTRAINTS" "$ROS_CONSTRAINTS" "$ROS_WHEELS" "$ROOT/requirements/python.txt" \
    "$ROOT/scripts/setup.sh" | sha256sum | cut -d' ' -f1)"
if [[ ! -f "$STAMP" || "$(cat "$STAMP")" != "$wanted" ]]; then
    # pip's download cache (~/.cache/pip) is shared by the venvs of both distributions: the
    # second one installs PyTorch and the rest without downloading them again.
    pip=("$VPY" -m pip install --disable-pip-version-check --progress-bar off -q
         -c "$CONSTRAINTS" -c "$ROS_CONSTRAINTS")
    log "installing pip tooling and PyTorch (first run: about a minute)"
    quiet_pip "${pip[@]}" pip setuptools wheel
    quiet_pip "${pip[@]}" torch torchvision
    log "installing ROS 2 $DISTRO wheels, colcon, SAM 2, Ultralytics and test tools"
    # sam2 is an sdist whose build imports torch: build it against the torch just installed
    # (no isolated build environment, which would download a second torch) and without its
    # optional CUDA extension.
    SAM2_BUILD_CUDA=0 quiet_pip "${pip[@]}" --no-build-isolation \
        -r "$ROS_WHEELS" -r "$ROOT/requirements/python.txt"
    echo "$wanted" > "$STAMP"
else
    log "Python packages up to date"
fi

# --- 4. make the wheels' CMake exports usable here -------------------------------------------
# The ROS wheels were built in a manylinux image; their exported CMake targets name that
# image's Python and numpy include directories, which CMake rejects as non-existent. Point
# them at this venv's. This only touches the venv, never files a real ROS install uses.
"$VPY" - "$VENV" <<'PY'
import pathlib, sys, sysconfig
import numpy
venv = pathlib.Path(sys.argv[1])
replacements = {
    '/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include':
        numpy.get_include(),
    '/opt/python/cp311-cp311/include/python3.11': sysconfig.get_paths()['include'],
}
for path in (venv / 'share').glob('*/cmake/*.cmake'):
    text = path.read_text()
    if '/opt/python/cp311-cp311/' in text:
        for old, new in replacements.items():
            text = text.replace(old, new)
        path.write_text(text)
PY

# --- 5. colcon build of this package ---------------------------------------------------------
log "colcon build ($DISTRO: build$SUFFIX/, install$SUFFIX/)"
cd "$ROOT"
export AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV" PATH="$VENV/bin:$PATH"
if ! colcon --log-base "$LOG_DIR" build --base-paths "$ROOT" --symlink-install \
        --build-base "$ROOT/build$SUFFIX" --install-base "$ROOT/install$SUFFIX" \
        --cmake-args -DPython3_EXECUTABLE="$VPY" -DBUILD_TESTING=ON \
        > "$LOG_DIR/colcon-build.txt" 2>&1 < /dev/null; then
    tail -n 40 "$LOG_DIR/colcon-build.txt" >&2
    die "colcon build failed (full output: $LOG_DIR/colcon-build.txt)"
fi
log "ready: source scripts/env.sh to use it"
