"""Declared parameters, config/sam2_ros.yaml and the README table agree."""

from pathlib import Path
import re

import pytest
import yaml

from sam2_ros.tracker.node import TrackerNode
from sam2_ros.tracker.parameters import SPECS

pytestmark = pytest.mark.ros

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def tracker_node(ros_context):
    from rclpy.parameter import Parameter

    node = TrackerNode(
        context=ros_context, parameter_overrides=[Parameter('autostart', value=False)]
    )
    yield node
    node.destroy_node()


def _declared(node):
    """Parameters the node declares itself, without those every rclpy node has."""
    from rclpy.node import Node

    plain = Node('plain_node', context=node.context)
    builtin = set(plain._parameters)  # use_sim_time, start_type_description_service, ...
    plain.destroy_node()
    return {
        name: node.describe_parameter(name) for name in node._parameters if name not in builtin
    }


def test_every_parameter_has_a_description(tracker_node):
    for name, descriptor in _declared(tracker_node).items():
        assert descriptor.description, f'{name} has no description'


def test_config_file_sets_exactly_the_declared_parameters_with_their_defaults(tracker_node):
    config = yaml.safe_load((ROOT / 'config' / 'sam2_ros.yaml').read_text())
    values = config['/**']['ros__parameters']
    declared = _declared(tracker_node)
    assert set(values) == set(declared)
    for name, value in values.items():
        assert SPECS[name].default == value, name
        if name != 'autostart':  # the fixture turns it off
            assert tracker_node.get_parameter(name).value == value, name
    # Each key's comment ends with when a change takes effect: [configure], [fixed] or nothing.
    comment = ''
    for line in (ROOT / 'config' / 'sam2_ros.yaml').read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith('#'):
            comment += stripped
            continue
        name = stripped.split(':', 1)[0]
        if name in SPECS:
            spec = SPECS[name]
            tag = '[fixed]' if spec.read_only else '[configure]' if spec.at_configure else ''
            assert ('[fixed]' in comment, '[configure]' in comment) == (
                tag == '[fixed]',
                tag == '[configure]',
            ), name
        comment = ''


def test_readme_parameter_table_lists_every_parameter(tracker_node):
    readme = (ROOT / 'README.md').read_text()
    section = readme.split('### Parameters', 1)[1].split('\n#', 1)[0]
    rows = dict(
        re.findall(r'^\| `([a-z0-9_.]+)` \| \w+ \| [^|]+ \| (\w+) \|', section, flags=re.MULTILINE)
    )
    assert sorted(rows) == sorted(_declared(tracker_node))
    for name, changes in rows.items():  # when a change takes effect, as the README says
        spec = SPECS[name]
        expected = 'fixed' if spec.read_only else 'configure' if spec.at_configure else 'live'
        assert changes == expected, name


def _declared_launch_arguments(path: Path) -> set[str]:
    return set(re.findall(r"DeclareLaunchArgument\(\s*'([a-z_]+)'", path.read_text()))


def _readme_rows(heading: str) -> set[str]:
    section = (ROOT / 'README.md').read_text().split(heading, 1)[1].split('\n#', 1)[0]
    return set(re.findall(r'^\| `([a-z_]+)` \|', section, flags=re.MULTILINE))


def test_readme_launch_tables_match_the_launch_files():
    tracker = _declared_launch_arguments(ROOT / 'launch' / 'sam2_tracker.launch.py')
    assert _readme_rows('### Launch arguments (`launch/sam2_tracker.launch.py`)') == tracker
    replay = _declared_launch_arguments(ROOT / 'launch' / 'sam2_replay.launch.py')
    table = _readme_rows('### Launch arguments (`launch/sam2_replay.launch.py`)')
    assert table <= replay
    section = (ROOT / 'README.md').read_text().split('sam2_replay.launch.py`)', 1)[1]
    mentioned = set(re.findall(r'`([a-z_]+)`', section.split('\n#', 1)[0]))
    assert replay - table <= mentioned, 'replay arguments neither in the table nor the text'


@pytest.mark.parametrize(
    ('name', 'bad', 'good', 'step'),
    [
        ('sam2_image_size', 300, 320, 64),
        ('detector_image_size', 650, 672, 32),
    ],
)
def test_image_sizes_advertise_and_enforce_their_step(tracker_node, name, bad, good, step):
    from rclpy.parameter import Parameter

    [integer_range] = tracker_node.describe_parameter(name).integer_range
    assert integer_range.step == step
    [result] = tracker_node.set_parameters([Parameter(name, value=bad)])
    assert not result.successful and str(step) in result.reason, result.reason
    assert tracker_node.get_parameter(name).value == SPECS[name].default
    [result] = tracker_node.set_parameters([Parameter(name, value=good)])
    assert result.successful, result.reason
