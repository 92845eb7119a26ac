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
