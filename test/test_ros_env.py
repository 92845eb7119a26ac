import os
import subprocess
import sys

from sam2_ros.ros.ros_env import apply_loopback_environment, claim_domain_id


def test_this_test_process_is_confined_to_localhost_in_a_private_domain():
    assert os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] == 'LOCALHOST'
    assert 1 <= int(os.environ['ROS_DOMAIN_ID']) <= 101
    assert 'ROS_LOCALHOST_ONLY' not in os.environ


def test_claimed_domain_ids_are_exclusive_across_processes():
    mine = {claim_domain_id() for _ in range(5)}
    assert len(mine) == 5
    # Another process claiming every free id must never get one this process holds.
    script = (
        'from sam2_ros.ros.ros_env import claim_domain_id\n'
        'ids = []\n'
        'try:\n'
        '    while True: ids.append(claim_domain_id())\n'
        'except RuntimeError:\n'
        '    print(" ".join(map(str, ids)))\n'
    )
    out = subprocess.run(
        [sys.executable, '-c', script], capture_output=True, text=True, check=True
    ).stdout
    theirs = set(map(int, out.split()))
    assert theirs and not (theirs & mine)
    assert int(os.environ['ROS_DOMAIN_ID']) not in theirs


def test_apply_sets_loopback_variables_in_a_given_environment():
    env = {'ROS_LOCALHOST_ONLY': '1'}
    domain = apply_loopback_environment(env, domain_id=42)
    assert domain == 42
    assert env == {
        'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST',
        'ROS_STATIC_PEERS': '',
        'ROS_DOMAIN_ID': '42',
    }


def test_humble_gets_ros_localhost_only_next_to_the_range():
    """Humble ignores ROS_AUTOMATIC_DISCOVERY_RANGE: simulated, as no Humble runs here."""
    env = {'ROS_DISTRO': 'humble'}
    apply_loopback_environment(env, domain_id=7)
    assert env['ROS_LOCALHOST_ONLY'] == '1'
    assert env['ROS_AUTOMATIC_DISCOVERY_RANGE'] == 'LOCALHOST'
    for distro in ('jazzy', 'kilted'):  # deprecated there: rcl warns when it is set
        env = {'ROS_DISTRO': distro, 'ROS_LOCALHOST_ONLY': '1'}
        apply_loopback_environment(env, domain_id=7)
        assert 'ROS_LOCALHOST_ONLY' not in env


def test_humble_is_told_by_rclpy_version_without_ros_distro(monkeypatch):
    from sam2_ros.ros import ros_env

    monkeypatch.setattr(ros_env.metadata, 'version', lambda name: '3.3.16')
    assert ros_env.is_humble({})
    monkeypatch.setattr(ros_env.metadata, 'version', lambda name: '7.1.6')
    assert not ros_env.is_humble({})


def test_tools_default_to_loopback_on_humble_and_keep_a_users_choice():
    from sam2_ros.ros.ros_env import default_to_loopback

    env = {'ROS_DISTRO': 'humble'}
    assert default_to_loopback(env) == 'LOCALHOST (ROS_LOCALHOST_ONLY)'
    assert env['ROS_LOCALHOST_ONLY'] == '1'
    env = {'ROS_DISTRO': 'humble', 'ROS_LOCALHOST_ONLY': '0'}
    assert default_to_loopback(env) == 'SUBNET' and env['ROS_LOCALHOST_ONLY'] == '0'
    env = {'ROS_DISTRO': 'jazzy'}
    assert default_to_loopback(env) == 'LOCALHOST' and 'ROS_LOCALHOST_ONLY' not in env
