"""Bad command lines and files for every command-line tool: one `error:` line, nothing written.

Each case runs the tool's `main` in-process on a fresh folder. It must exit non-zero with
exactly one line containing `error:` on stderr and no traceback (an exception escaping
`main` fails the test), and must leave the folder as it found it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sam2_ros.tools import demo, evaluate, make_bag, render, replay

TOOLS = {
    'sam2_make_bag': make_bag.main,
    'sam2_replay': replay.main,
    'sam2_evaluate': evaluate.main,
    'sam2_render': render.main,
    'sam2_demo': demo.main,
}
BAD_BYTES = b'events:\n  - {at: 1, box: [1, 2, 3, 4]}\n# \x80\n'

# (tool, arguments with {tmp} for the folder, a piece of the expected error line)
CASES = [
    ('sam2_make_bag', '{tmp}/bag --scenario translation --fps nan', "'nan' is not a finite"),
    ('sam2_make_bag', '{tmp}/bag --scenario translation --fps inf', "'inf' is not a finite"),
    ('sam2_make_bag', '{tmp}/bag --scenario translation --fps -1', "'-1' must be >= 0"),
    ('sam2_make_bag', '{tmp}/bag --scenario translation --start-time nan', '--start-time'),
    ('sam2_make_bag', '{tmp}/bag --scenario translation --start-time 1e12', 'past 2038'),
    ('sam2_make_bag', '{tmp}/bag --scenario translation --topic not_a_topic!!', 'valid ROS'),
    ('sam2_make_bag', '{tmp}/bag --scenario translation --topic /cam//image', 'contain //'),
    ('sam2_make_bag', '{tmp}/bag --scenario translation --camera-info-topic 1/info', 'part'),
    ('sam2_make_bag', '{tmp}/bag --scenario translation --width 10', 'go together'),
    ('sam2_make_bag', '{tmp}/bag --scenario nowhere', 'invalid choice'),
    ('sam2_make_bag', '{tmp}/bag --video {tmp}/missing.avi', 'missing.avi'),
    ('sam2_make_bag', '{tmp}/bag --scenario translation --camera-info {tmp}/bad.yaml', 'calib'),
    ('sam2_make_bag', '{tmp}/bag --scenario translation --prompt-script {tmp}/no/p.yaml', 'fold'),
    ('sam2_replay', '{tmp}/bag --connect-timeout -1', "'-1' must be > 0"),
    ('sam2_replay', '{tmp}/bag --frame-timeout nan', "'nan' is not a finite"),
    ('sam2_replay', '{tmp}/bag --rate nan', "'nan' is not a finite"),
    ('sam2_replay', '{tmp}/bag --rate 0', "'0' must be > 0"),
    ('sam2_replay', '{tmp}/bag --lockstep --rate 2', 'does not apply with --lockstep'),
    ('sam2_replay', '{tmp}/bag --max-frames -3', '--max-frames: -3'),
    ('sam2_replay', '{tmp}/bag --prompts {tmp}/bad.yaml', 'byte 0x80 at offset'),
    ('sam2_replay', '{tmp}/bag --prompts {tmp}/missing.yaml', 'cannot read'),
    ('sam2_replay', '{tmp}/bag --qos-profile-overrides-path {tmp}/bad.yaml', 'QoS overrides'),
    ('sam2_replay', '{tmp}/bag --remap /a:=bad!name', "'bad!name' is not a valid ROS"),
    ('sam2_replay', '{tmp}/bag --remap nothing', 'FROM:=TO'),
    ('sam2_replay', '{tmp}/bag --topics /ok /not#ok', "'/not#ok' is not a valid ROS"),
    ('sam2_replay', '{tmp}/bag --node tracker/', 'must not end with /'),
    ('sam2_replay', '{tmp}/bag --record-topic ""', 'it is empty'),
    ('sam2_replay', '{tmp}/bag', 'no such bag'),
    ('sam2_evaluate', '{tmp}/bag --json {tmp}/no/such/folder/report.json', 'folder does not'),
    ('sam2_evaluate', '{tmp}/bag --json {tmp}', 'is a directory'),
    ('sam2_evaluate', '{tmp}/bag', 'no such bag'),
    ('sam2_render', '{tmp}/in {tmp}/out {tmp}/existing.mp4', 'pass --overwrite'),
    ('sam2_render', '{tmp}/in {tmp}/out {tmp}/video.mp4 --fps 0', "'0' must be > 0"),
    ('sam2_render', '{tmp}/in {tmp}/out {tmp}/video.mp4 --fps nan', "'nan' is not a finite"),
    ('sam2_render', '{tmp}/in {tmp}/out {tmp}', 'is a directory'),
    ('sam2_render', '{tmp}/in {tmp}/out {tmp}/no/video.mp4', 'folder does not exist'),
    ('sam2_render', '{tmp}/in {tmp}/out {tmp}/video.mp4', 'no such bag'),
    ('sam2_demo', '--timeout nan', "'nan' is not a finite"),
    ('sam2_demo', '--frames 2', '--frames >= 8'),
    ('sam2_demo', '--image-size -256', '--image-size: -256'),
]


def _folder(tmp_path: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(tmp_path)): p.read_bytes() if p.is_file() else b''
        for p in sorted(tmp_path.rglob('*'))
    }


@pytest.mark.parametrize(('tool', 'args', 'expected'), CASES)
def test_bad_command_lines_give_one_error_line_and_write_nothing(
    tool, args, expected, tmp_path, capsys
):
    (tmp_path / 'bad.yaml').write_bytes(BAD_BYTES)
    (tmp_path / 'existing.mp4').write_bytes(b'an earlier video')
    before = _folder(tmp_path)
    argv = [a.strip('"') for a in args.format(tmp=tmp_path).split()]
    try:
        code = TOOLS[tool](argv)
    except SystemExit as exit_:
        code = exit_.code
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if 'error:' in line]
    assert code not in (0, None), captured
    assert len(errors) == 1, captured.err
    assert expected in errors[0], errors[0]
    assert 'Traceback' not in captured.err + captured.out
    assert _folder(tmp_path) == before, 'the tool wrote or changed files'


def test_every_console_script_is_covered():
    import configparser

    config = configparser.ConfigParser()
    config.read(Path(__file__).parents[1] / 'setup.cfg')
    scripts = config['options.entry_points']['console_scripts'].split('\n')
    names = {line.split('=')[0].strip() for line in scripts if line.strip()}
    nodes = {'sam2_tracker_node', 'sam2_web_console'}  # ROS arguments: test_node_robustness
    assert names - nodes == set(TOOLS)


def test_a_bag_with_an_invalid_topic_name_is_refused_before_playing(tmp_path, monkeypatch, capsys):
    """Bags made elsewhere may hold any topic name; replay names it and suggests --remap."""
    monkeypatch.setattr(make_bag, 'ros_name_problem', lambda name: '')
    source = make_bag.scenario_source('translation', 3, None, 10.0, 0)
    make_bag.make_bag(tmp_path / 'bag', source, image_topic='/not a topic!!')
    capsys.readouterr()
    assert replay.main([str(tmp_path / 'bag')]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count('error:') == 1 and "topic '/not a topic!!' is not a valid ROS name" in err
    assert '--remap' in err


def test_make_bag_refuses_invalid_topic_names_from_python_too(tmp_path):
    from sam2_ros.tools.bag_io import BagError

    source = make_bag.scenario_source('translation', 3, None, 10.0, 0)
    with pytest.raises(BagError, match="topic 'x y' is not a valid ROS name"):
        make_bag.make_bag(tmp_path / 'bag', source, image_topic='x y')
    assert not (tmp_path / 'bag').exists()
