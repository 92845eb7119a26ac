"""The main job (`scripts/demo.sh` runs this executable) works end to end."""

import subprocess

import pytest

from sam2_ros.ros.node_process import installed_executable


@pytest.mark.timeout(120)
def test_demo_streams_frames_and_prints_every_answer():
    result = subprocess.run(
        [installed_executable('sam2_demo'), '--frames', '6', '--rate', '20'],
        capture_output=True,
        text=True,
        timeout=100,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    answers = [line for line in out.splitlines() if line.startswith('[demo] tracked_objects:')]
    assert [a.split('frame_id=')[1].split()[0] for a in answers] == [
        f'demo_camera#{i}' for i in range(6)
    ]
    assert '[demo] published 6 frames, received 6 tracked_objects' in out
    assert '[demo] node exited with code 0' in out


def test_demo_rejects_bad_arguments():
    result = subprocess.run(
        [installed_executable('sam2_demo'), '--frames', '0'], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert '--frames >= 1' in result.stderr
