"""The main job (`scripts/demo.sh` runs this executable) works end to end."""

import subprocess

import pytest

from sam2_ros.ros.node_process import installed_executable


@pytest.mark.timeout(120)
def test_demo_streams_frames_and_prints_every_answer():
    result = subprocess.run(
        [
            installed_executable('sam2_demo'),
            '--weights',
            'untrained',
            '--frames',
            '8',
            '--rate',
            '10',
        ],
        capture_output=True,
        text=True,
        timeout=100,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert '[demo] weights: UNTRAINED random weights: requested with --weights untrained' in out
    answers = [
        line for line in out.splitlines() if line.startswith('[demo][UNTRAINED] tracked_objects:')
    ]
    frames = [int(a.split('frame_id=demo_camera#')[1].split()[0]) for a in answers]
    assert frames == sorted(frames) and frames[0] == 0 and frames[-1] == 7  # drops allowed
    assert '[demo][UNTRAINED] add_prompt box=' in out and 'success=True object_id=1' in out
    assert all('[id=1 disc ' in a for a in answers[1:]) and len(answers) >= 2
    assert '[demo] published 8 frames, received' in out
    assert '[demo] node exited with code 0' in out and out.rstrip().endswith('[demo] OK')


def test_demo_rejects_bad_arguments():
    result = subprocess.run(
        [installed_executable('sam2_demo'), '--frames', '1'], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert '--frames >= 2' in result.stderr
