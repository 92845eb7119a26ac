"""What the launch files declare, read from their source (launch is not installable here).

The real `ros2 launch` stack is not on PyPI, so these files cannot run in CI; the README says
how they were tried by hand. What can be read without running them is checked here.
"""

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.ros


LAUNCH = Path(__file__).resolve().parents[1] / 'launch'
FILES = ('sam2_tracker.launch.py', 'sam2_replay.launch.py')


def declared(name: str) -> dict[str, dict]:
    """Return {argument: {'default': str, 'choices': [...]}} in declaration order."""
    tree = ast.parse((LAUNCH / name).read_text())
    constants = {
        target.id: ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name) and isinstance(node.value, ast.List)
    }

    def value(node):
        if isinstance(node, ast.Name):
            return constants.get(node.id)  # None: computed at run time
        if isinstance(node, ast.List):
            items = []
            for item in node.elts:
                items += value(item.value) if isinstance(item, ast.Starred) else [value(item)]
            return items
        return ast.literal_eval(node) if isinstance(node, ast.Constant) else None

    arguments = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, 'id', '') == 'DeclareLaunchArgument':
            keywords = {k.arg: value(k.value) for k in node.keywords if k.arg != 'description'}
            arguments[ast.literal_eval(node.args[0])] = keywords
    return arguments


@pytest.mark.parametrize('name', FILES)
def test_boolean_arguments_accept_the_capitalised_spelling(name):
    booleans = {
        arg: spec['choices']
        for arg, spec in declared(name).items()
        if 'false' in spec.get('choices', [])
    }
    assert booleans
    for arg, choices in booleans.items():
        assert {'true', 'false', 'True', 'False'} <= set(choices), arg


@pytest.mark.parametrize('name', FILES)
def test_sam2_image_size_is_an_argument(name):
    assert declared(name)['sam2_image_size']['default_value'] == ''


def test_replay_lists_the_values_it_forces_on_the_tracker():
    # --show-args lists the first declaration of a name; the replay's own come first.
    replay = declared('sam2_replay.launch.py')
    assert replay['use_sim_time'] == {'default_value': 'true', 'choices': ['true', 'True']}
    assert replay['image_reliability'] == {'default_value': 'reliable', 'choices': ['reliable']}
    source = (LAUNCH / 'sam2_replay.launch.py').read_text()
    assert "'use_sim_time': 'true'" in source and "'image_reliability': 'reliable'" in source
    assert "'sam2_image_size'," in source.split('FORWARDED = (', 1)[1].split(')', 1)[0]
