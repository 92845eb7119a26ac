"""The main job (`scripts/demo.sh` runs this executable) works end to end."""

import json
import subprocess

import pytest

from sam2_ros.ros.node_process import installed_executable
from sam2_ros.tools.bag_io import BagReader

pytestmark = [pytest.mark.slow, pytest.mark.ros]


@pytest.mark.timeout(180)
def test_demo_builds_replays_evaluates_and_renders(tmp_path):
    out_dir = tmp_path / 'demo'
    result = subprocess.run(
        [
            installed_executable('sam2_demo'),
            '--weights',
            'untrained',
            '--frames',
            '10',
            '--width',
            '320',
            '--height',
            '240',
            '--output-dir',
            str(out_dir),
        ],
        capture_output=True,
        text=True,
        timeout=170,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert '[demo] weights: UNTRAINED random weights: requested with --weights untrained' in out
    assert 'ground truth for 2 objects' in out and '(2 box prompts)' in out
    assert '[demo] lockstep replay: 10/10' in out
    assert '[demo][UNTRAINED]: 10 frames published, 10 answered, 0 unanswered' in out
    assert '[demo][UNTRAINED] summary: 10/10 frames answered' in out and 'J&F ' in out
    assert '[demo] node exited with code 0' in out and out.rstrip().endswith('[demo] OK')
    report = json.loads((out_dir / 'report.json').read_text())
    assert report['weights'] == 'UNTRAINED' and report['frames_answered'] == 10
    assert set(report['accuracy']['objects']) == {'1', '2'}
    with BagReader(out_dir / 'output_bag') as reader:
        assert reader.message_counts['/tracked_objects'] == 10
    assert (out_dir / 'overlay.mp4').stat().st_size > 10_000


def test_demo_rejects_bad_arguments():
    result = subprocess.run(
        [installed_executable('sam2_demo'), '--frames', '1'], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert '--frames >= 8' in result.stderr
