"""The bag tools without a node.

Bags written by sam2_make_bag are real rosbag2 bags, prompt scripts report errors with their
lines, evaluation gives known answers, bad bags give one clear line and no traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
import shutil
import subprocess
import sys

import numpy as np
import pytest
import yaml

from sam2_ros.core.rle import decode_rle, encode_rle
from sam2_ros.evaluation import synthetic
from sam2_ros.evaluation.metrics import boundary_f_measure
from sam2_ros.ros.node_process import installed_executable
from sam2_ros.tools.bag_io import (
    GROUND_TRUTH_TOPIC,
    PUBLISHED_FRAMES_TOPIC,
    BagError,
    BagReader,
    BagWriter,
    typestore,
)
from sam2_ros.tools.evaluate import evaluate, format_report
from sam2_ros.tools.make_bag import first_box_prompts
from sam2_ros.tools.make_bag import main as make_bag_main
from sam2_ros.tools.prompt_script import PromptScriptError, load_prompt_script, parse_prompt_script

VTEST = synthetic.OPENCV_DATA / 'vtest.avi'
START = 1_700_000_000


def _make(tmp_path: Path, name: str, *args: str) -> Path:
    bag = tmp_path / name
    assert make_bag_main([str(bag), '--start-time', str(START), *args]) == 0
    return bag


def _storage(bag: Path) -> str:
    metadata = yaml.safe_load((bag / 'metadata.yaml').read_text())
    return metadata['rosbag2_bagfile_information']['storage_identifier']


@pytest.fixture(scope='module')
def scenario_bag(tmp_path_factory):
    """Write a 24-frame semi-synthetic bag (mcap) with ground truth and its prompt script."""
    tmp = tmp_path_factory.mktemp('scenario')
    script = tmp / 'prompts.yaml'
    bag = tmp / 'occlusion'
    args = ['--scenario', 'occlusion', '--frames', '24', '--width', '320', '--height', '240']
    assert (
        make_bag_main(
            [str(bag), '--start-time', str(START), *args, '--prompt-script', str(script)]
        )
        == 0
    )
    return bag, script


def test_scenario_bag_is_a_rosbag2_bag_with_exact_ground_truth(scenario_bag):
    from rosbags.rosbag2 import Reader

    bag, _ = scenario_bag
    sequence = synthetic.scenario('occlusion', num_frames=24, width=320, height=240)
    store = typestore()
    assert _storage(bag) == 'mcap'
    with Reader(bag) as reader:  # rosbags itself, not our wrapper
        assert {c.topic: c.msgtype for c in reader.connections} == {
            '/camera/image_raw': 'sensor_msgs/msg/Image',
            '/camera/camera_info': 'sensor_msgs/msg/CameraInfo',
            GROUND_TRUTH_TOPIC: 'sam2_ros/msg/TrackedObjectArray',
        }
        assert all(c.msgcount == 24 for c in reader.connections)
        for connection in reader.connections:
            (qos,) = connection.ext.offered_qos_profiles
            assert qos.reliability.name == 'RELIABLE'
        images, truths = [], []
        for connection, log_time, raw in reader.messages():
            msg = store.deserialize_cdr(raw, connection.msgtype)
            assert log_time == msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
            assert msg.header.frame_id == 'camera_optical_frame'
            if connection.topic == '/camera/image_raw':
                images.append(msg)
            elif connection.topic == GROUND_TRUTH_TOPIC:
                truths.append(msg)
    assert [m.header.stamp.sec for m in images][:11:10] == [START, START + 1]  # 10 fps
    for index in (0, 13, 23):
        bgr = images[index].data.reshape(240, 320, 3)
        np.testing.assert_array_equal(bgr[..., ::-1], sequence.frames[index])
        for obj in truths[index].objects:
            truth = sequence.truth[index][obj.id]
            mask = decode_rle(obj.mask.height, obj.mask.width, obj.mask.counts)
            np.testing.assert_array_equal(mask, truth.mask)
            assert obj.visibility == pytest.approx(truth.visible_fraction, abs=1e-6)
            assert obj.class_name == truth.class_name and obj.area == truth.mask.sum()


def test_video_bag_in_sqlite3_with_compressed_images_reads_back(tmp_path):
    import cv2
    from rosbags.rosbag2 import Reader

    bag = _make(
        tmp_path,
        'vtest',
        '--video',
        str(VTEST),
        '--frames',
        '5',
        '--storage',
        'sqlite3',
        '--compressed',
        'jpeg',
        '--width',
        '384',
        '--height',
        '288',
    )
    capture = cv2.VideoCapture(str(VTEST))
    assert _storage(bag) == 'sqlite3' and list(bag.glob('*.db3'))
    with Reader(bag) as reader:
        assert {c.topic for c in reader.connections} == {
            '/camera/image_raw/compressed',
            '/camera/camera_info',
        }
        store = typestore()
        frames = [
            store.deserialize_cdr(raw, c.msgtype)
            for c, _, raw in reader.messages()
            if c.topic.endswith('compressed')
        ]
    assert len(frames) == 5 and frames[0].format == 'bgr8; jpeg compressed bgr8'
    decoded = cv2.imdecode(frames[0].data, cv2.IMREAD_COLOR)
    _, original = capture.read()
    original = cv2.resize(original, (384, 288), interpolation=cv2.INTER_AREA)
    assert np.abs(decoded.astype(int) - original).mean() < 4  # jpeg of the real first frame


def test_generated_prompt_script_boxes_each_object_where_it_first_shows(scenario_bag):
    bag, script_path = scenario_bag
    script = load_prompt_script(script_path)
    sequence = synthetic.scenario('occlusion', num_frames=24, width=320, height=240)
    assert [(e.frame, e.ground_truth) for e in script.events] == [(0, 1), (0, 2)]
    for event in script.events:
        assert event.box == tuple(float(v) for v in sequence.truth[0][event.ground_truth].box)
    assert first_box_prompts(sequence.truth)[0]['add']['name'] == 'orange_1'


@pytest.mark.parametrize(
    ('text', 'errors'),
    [
        (
            'events:\n  - frame: 0\n    add: {box: [1, 2, 3]}\n',
            ['x.yaml:3: box needs 4 numbers [x_min, y_min, x_max, y_max], got 3'],
        ),
        (
            'events:\n  - {frame: 1, add: {points: [[.nan, 2]]}}\n  - {time: -1, reset: true}\n',
            [
                'x.yaml:2: point coordinates must be finite numbers >= 0, got nan, 2',
                'x.yaml:3: time must be a number of seconds >= 0, got -1',
            ],
        ),
        (
            'events:\n  - frame: 2\n    remove: cup\n',
            ['x.yaml:3: object `cup` is not named by an earlier add'],
        ),
        (
            'events:\n  - frame: 0\n    add: {box: [4, 4, 2, 9], colour: red}\n',
            [
                'x.yaml:3: unknown add key `colour`',
                'x.yaml:3: box must have 0 <= x_min < x_max and 0 <= y_min < y_max',
            ],
        ),
        (
            'events:\n  - {frame: 0, reset: true, remove: 1}\n',
            ['x.yaml:2: an event needs exactly one of add, remove, reset; got remove, reset'],
        ),
        ('events:\n  - {frame: 0, add: {box: [1, 2, 3, 4]}\n', ['x.yaml:3: not valid YAML']),
        ('prompts: []\n', ['x.yaml:1: the script needs a top-level `events:` list']),
    ],
)
def test_prompt_script_errors_name_their_lines(text, errors):
    with pytest.raises(PromptScriptError) as caught:
        parse_prompt_script(text, 'x.yaml')
    lines = str(caught.value).splitlines()
    assert len(lines) == len(errors)
    for line, expected in zip(lines, errors, strict=True):
        assert line.startswith(expected), (line, expected)


def test_prompt_script_times_resolve_to_frames_and_late_events_fail():
    script = parse_prompt_script(
        'events:\n  - {time: 0.25, add: {name: a, points: [[1, 2], [3, 4, background]]}}\n'
        '  - {frame: 3, remove: a}\n  - {time: 9, reset: true}\n',
        's.yaml',
    )
    stamps = [10**9 + i * 100_000_000 for i in range(5)]  # 10 fps
    with pytest.raises(PromptScriptError, match=r's.yaml:4: t=9s: reset .* is after the last'):
        script.resolve(len(stamps), stamps)
    schedule = parse_prompt_script(
        'events:\n  - {time: 0.25, add: {name: a, points: [[1, 2], [3, 4, background]]}}\n'
    ).resolve(len(stamps), stamps)
    (event,) = schedule[3]  # the first frame at or after 0.25 s
    assert event.points == ((1.0, 2.0, 1), (3.0, 4.0, 0))


# ---------------------------------------------------------------------------- evaluation


def _write_run(path: Path, truth_bag: Path, predictions, log_ms, assignment=None, shapes=None):
    """Write an output bag: per frame an answer (or None), publication and answer times.

    The ground truth is recorded too (as `--record-topic /ground_truth/objects` would): a
    second TrackedObjectArray topic that must never be read as the answers. `shapes`: per
    frame {object id: (position, box_size)} for objects with 3D.
    """
    store = typestore()
    types = store.types
    with BagReader(truth_bag) as reader:
        truths = [m.msg for m in reader.messages([GROUND_TRUTH_TOPIC])]
    with BagWriter(path) as writer:
        writer.set_custom_data('input_bag', str(truth_bag))
        writer.set_custom_data('mode', 'lockstep')
        if assignment is not None:
            writer.set_custom_data('assignment', assignment)
        writer.add_topic('/tracked_objects', 'sam2_ros/msg/TrackedObjectArray')
        for index, (truth, objects) in enumerate(zip(truths, predictions, strict=True)):
            published = (START + index) * 10**9
            writer.write(PUBLISHED_FRAMES_TOPIC, published, truth.header, 'std_msgs/msg/Header')
            writer.write(GROUND_TRUTH_TOPIC, published, truth, 'sam2_ros/msg/TrackedObjectArray')
            if objects is None:
                continue
            msg_objects = []
            for obj_id, mask in objects.items():
                rle = encode_rle(mask)
                position, size = (shapes[index] if shapes else {}).get(obj_id, ((0, 0, 0),) * 2)
                obj = types['sam2_ros/msg/TrackedObject'](
                    id=obj_id,
                    label='',
                    class_id=-1,
                    class_name='',
                    state=0,
                    score=1.0,
                    visibility=1.0,
                    propagation_confidence=1.0,
                    bbox=types['sensor_msgs/msg/RegionOfInterest'](0, 0, 0, 0, False),
                    centroid_x=0.0,
                    centroid_y=0.0,
                    area=int(mask.sum()),
                    mask=types['sam2_ros/msg/Mask'](rle.height, rle.width, rle.counts),
                    frames_since_keyframe=0,
                    keyframe_stamp=truth.header.stamp,
                    keyframe_age_ms=0.0,
                    reanchor_count=0,
                    has_3d=bool(shapes and obj_id in shapes[index]),
                    position=types['geometry_msgs/msg/Point'](*map(float, position)),
                    box_center=types['geometry_msgs/msg/Point'](*map(float, position)),
                    box_size=types['geometry_msgs/msg/Vector3'](*map(float, size)),
                    depth_points=0,
                    depth_coverage=0.0,
                    depth_reason='',
                )
                msg_objects.append(obj)
            answer = types['sam2_ros/msg/TrackedObjectArray'](
                header=truth.header,
                image_height=240,
                image_width=320,
                is_keyframe=index % 2 == 0,
                keyframe_reasons=[],
                objects=msg_objects,
            )
            writer.write(
                '/tracked_objects',
                published + round(log_ms * 1e6),
                answer,
                'sam2_ros/msg/TrackedObjectArray',
            )


def test_evaluation_gives_known_answers(scenario_bag, tmp_path):
    bag, _ = scenario_bag
    sequence = synthetic.scenario('occlusion', num_frames=24, width=320, height=240)
    predictions, expected_j, expected_f = [], [], []
    for index, frame in enumerate(sequence.truth):
        if index == 5:
            predictions.append(None)  # never answered: lost
            continue
        shifted = np.roll(frame[2].mask, 3, axis=1)  # object 2, 3 px to the right
        # object 1 exactly right, object 2 shifted, under a new id from frame 12
        predictions.append({1: frame[1].mask, 2 if index < 12 else 7: shifted})
        if index >= 1 and frame[2].visible:
            inter = np.logical_and(shifted, frame[2].mask).sum()
            expected_j.append(inter / np.logical_or(shifted, frame[2].mask).sum())
            expected_f.append(boundary_f_measure(shifted, frame[2].mask))
    run = tmp_path / 'run'
    assignment = {'1': {'ids': [1], 'from_frame': 1}, '2': {'ids': [2, 7], 'from_frame': 1}}
    _write_run(run, bag, predictions, log_ms=25.0, assignment=assignment)

    report = evaluate(run)
    assert report['frames_published'] == 24 and report['frames_answered'] == 23
    assert report['frames_lost'] == [5]
    assert report['latency_ms']['p50'] == pytest.approx(25.0)
    assert report['keyframes'] == 12 and report['object_ids'] == [1, 2, 7]
    accuracy = report['accuracy']
    one, two = accuracy['objects']['1'], accuracy['objects']['2']
    visible_one = sum(f[1].visible for i, f in enumerate(sequence.truth) if i >= 1)
    assert one['frames_scored'] == visible_one and one['frames_missed'] == 1  # the lost frame
    # J over scored frames: 1 everywhere but 0 on the lost frame
    assert one['J'] == pytest.approx((visible_one - 1) / visible_one)
    assert two['node_ids'] == [2, 7] and two['id_switches'] == 1
    assert two['J'] == pytest.approx(np.sum(expected_j) / (len(expected_j) + 1))
    assert two['F'] == pytest.approx(np.sum(expected_f) / (len(expected_f) + 1))
    assert accuracy['J&F'] == pytest.approx((one['J&F'] + two['J&F']) / 2)
    table = format_report(report)
    assert 'frames: 24 published, 23 answered, 1 lost' in table and '2,7' in table


# ------------------------------------------------------------------------------ bad input


def _run_cli(name: str, *args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [installed_executable(name), *map(str, args)], capture_output=True, text=True, timeout=60
    )


@pytest.mark.ros  # runs the installed executables
def test_corrupt_truncated_and_missing_bags_give_one_line(scenario_bag, tmp_path):
    import shutil

    bag, _ = scenario_bag
    run = tmp_path / 'run'  # a valid recording, rendered over each broken input bag
    _write_run(run, bag, [{} for _ in range(24)], log_ms=10.0)
    damaged = tmp_path / 'damaged'
    shutil.copytree(bag, damaged)
    (mcap,) = damaged.glob('*.mcap')
    data = mcap.read_bytes()
    mcap.write_bytes(data[: len(data) // 2])  # truncated mid-chunk
    unfinished = tmp_path / 'unfinished'
    shutil.copytree(bag, unfinished)
    (unfinished / 'metadata.yaml').unlink()
    garbage = tmp_path / 'garbage'
    shutil.copytree(bag, garbage)
    (mcap,) = garbage.glob('*.mcap')
    mcap.write_bytes(b'not an mcap file' * 100)
    for path, expected in [
        (damaged, 'damaged'),
        (unfinished, 'metadata.yaml is missing'),
        (garbage, 'cannot open the bag'),
        (tmp_path / 'nothing', 'no such bag'),
    ]:
        result = _run_cli('sam2_render', path, run, tmp_path / 'x.mp4')
        assert result.returncode == 1
        assert 'Traceback' not in result.stderr
        (line,) = result.stderr.strip().splitlines()
        assert line.startswith('sam2_render: error:') and expected in line, line
        with pytest.raises(BagError, match=expected):
            with BagReader(path) as reader:
                list(reader.messages())


@pytest.mark.ros  # runs the installed executables
def test_missing_topics_and_unknown_types_are_named(scenario_bag, tmp_path):
    from rosbags.typesys import get_types_from_msg

    bag, _ = scenario_bag
    result = _run_cli('sam2_evaluate', bag)  # an input bag: no tracked_objects in it
    assert result.returncode == 1 and 'Traceback' not in result.stderr
    assert 'topic /tracked_objects is needed but not in the bag' in result.stderr
    assert '/camera/image_raw (sensor_msgs/msg/Image)' in result.stderr

    store = typestore()
    store.register(get_types_from_msg('int32 speed', 'acme_msgs/msg/Speed'))
    odd = tmp_path / 'odd'
    with BagReader(bag) as reader:
        image = next(reader.messages(['/camera/image_raw']))
    with BagWriter(odd) as writer:
        writer.write('/camera/image_raw', 1, image.msg, image.msgtype)
        speed = store.types['acme_msgs/msg/Speed'](speed=3)
        writer.write('/speed', 1, speed, 'acme_msgs/msg/Speed')
    result = _run_cli('sam2_replay', odd, '--topics', '/camera/image_raw', '/speed')
    assert result.returncode == 1 and 'Traceback' not in result.stderr
    assert 'unknown message type acme_msgs/msg/Speed' in result.stderr
    result = _run_cli('sam2_replay', bag, '--topics', '/camera/depth')
    assert 'topic /camera/depth was asked for but not in the bag' in result.stderr
    result = _run_cli('sam2_make_bag', tmp_path / 'new', '--video', tmp_path / 'none.avi')
    assert result.returncode == 1 and 'OpenCV cannot open this video' in result.stderr


@pytest.mark.ros  # runs the installed executables
def test_a_bad_prompt_file_is_reported_before_anything_plays(scenario_bag, tmp_path):
    bag, _ = scenario_bag
    script = tmp_path / 'bad.yaml'
    script.write_text(
        'events:\n  - frame: 0\n    add: {box: [1, 2]}\n  - frame: x\n    reset: true\n'
    )
    result = _run_cli('sam2_replay', bag, '--prompts', script, '--record', tmp_path / 'out')
    assert result.returncode == 1 and 'Traceback' not in result.stderr
    assert f'{script}:3: box needs 4 numbers' in result.stderr
    assert f"{script}:4: frame must be an integer >= 0, got 'x'" in result.stderr
    assert not (tmp_path / 'out').exists()

    # Events past the end of the bag are found before the replay waits for a tracker (there
    # is none here), records or resets anything.
    late = tmp_path / 'late.yaml'
    late.write_text('events:\n  - {frame: 100, reset: true}\n  - {time: 60, reset: true}\n')
    result = _run_cli(
        'sam2_replay', bag, '--prompts', late, '--record', tmp_path / 'out',
        '--connect-timeout', 30,
    )  # fmt: skip
    assert result.returncode == 1 and 'Traceback' not in result.stderr, result.stderr
    assert f'{late}:2: frame 100: reset (line 2) is after the last image' in result.stderr
    assert f'{late}:3: t=60s: reset (line 3) is after the last image' in result.stderr
    assert 'did not appear' not in result.stderr
    assert not (tmp_path / 'out').exists()


@pytest.mark.ros  # runs the installed executables
def test_make_bag_says_when_it_cannot_write_the_prompt_script(tmp_path):
    result = _run_cli(
        'sam2_make_bag', '--scenario', 'translation', '--frames', 4, '--width', 160,
        '--height', 120, '--prompt-script', tmp_path / 'missing' / 'p.yaml', tmp_path / 'bag',
    )  # fmt: skip
    assert result.returncode == 2 and 'Traceback' not in result.stderr
    assert 'its folder does not exist' in result.stderr
    assert not (tmp_path / 'bag').exists()  # refused before anything was written


@pytest.mark.ros  # runs the installed executables
def test_report_json_is_valid_json_with_nulls_for_nothing_scored(scenario_bag, tmp_path):
    bag, _ = scenario_bag
    run = tmp_path / 'run'
    _write_run(run, bag, [{} for _ in range(24)], log_ms=10.0)  # answered, nothing tracked
    result = _run_cli('sam2_evaluate', run, '--json', tmp_path / 'report.json')
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / 'report.json').read_text())
    assert report['accuracy']['assignment'] == 'by overlap'
    assert report['accuracy']['objects']['1']['node_ids'] == []
    assert report['accuracy']['J'] == 0.0 and report['keyframe_ratio'] == 0.5


# ---------------------------------------------------------------------------------- depth


@pytest.fixture(scope='module')
def depth_bag(tmp_path_factory):
    """Write a 24-frame occlusion scenario with sensor-like 16UC1 depth and 3D truth."""
    bag = tmp_path_factory.mktemp('depth') / 'occlusion_depth'
    args = ['--scenario', 'occlusion', '--frames', '24', '--width', '320', '--height', '240']
    args += ['--depth', '--depth-noise', 'sensor', '--start-time', str(START)]
    assert make_bag_main([str(bag), *args]) == 0
    return bag


def test_scenario_bag_with_depth_has_aligned_depth_and_exact_3d_truth(depth_bag):
    from sam2_ros.core.depth import Intrinsics, object_3d
    from sam2_ros.ros.image_conversion import depth_msg_to_array

    topics = ['/camera/image_raw', '/camera/depth/image_raw', '/camera/depth/camera_info']
    topics += ['/camera/camera_info', GROUND_TRUTH_TOPIC]
    with BagReader(depth_bag) as reader:
        assert all(reader.message_counts[t] == 24 for t in topics)
        order = [m.topic for m in reader.messages(topics[:2])][:4]
        by_topic: dict = {}
        for message in reader.messages(topics):
            by_topic.setdefault(message.topic, []).append(message.msg)
    assert order == ['/camera/depth/image_raw', '/camera/image_raw'] * 2  # depth first
    errors = []
    for index in range(24):
        image, depth = by_topic['/camera/image_raw'][index], by_topic[topics[1]][index]
        info, depth_info = by_topic['/camera/camera_info'][index], by_topic[topics[2]][index]
        assert depth.header == image.header and depth.encoding == '16UC1'
        assert list(depth_info.k) == list(info.k) and depth_info.header == image.header
        camera = Intrinsics.from_k(info.k, info.width, info.height)
        data, unit = depth_msg_to_array(depth)
        for gt in by_topic[GROUND_TRUTH_TOPIC][index].objects:
            mask = decode_rle(gt.mask.height, gt.mask.width, gt.mask.counts)
            assert gt.has_3d == bool(mask.any())
            if mask.sum() < 200:  # a sliver at the bar's edge: no honest 3D from a few pixels
                continue
            est = object_3d(mask, data, unit, camera)
            truth = np.array([gt.position.x, gt.position.y, gt.position.z])
            errors.append(np.linalg.norm(np.subtract(est.centre, truth)))
    assert errors and max(errors) < 0.02, max(errors)


def test_evaluation_reports_3d_centre_and_extent_errors(depth_bag, tmp_path):
    with BagReader(depth_bag) as reader:
        truths = [m.msg for m in reader.messages([GROUND_TRUTH_TOPIC])]
    predictions, shapes = [], []
    for truth in truths:
        masks = {
            int(o.id): decode_rle(o.mask.height, o.mask.width, o.mask.counts)
            for o in truth.objects
        }
        predictions.append(masks)
        frame = {}
        for o in truth.objects:
            if not o.has_3d:
                continue
            position = (o.position.x + 0.03, o.position.y, o.position.z + 0.04)  # 5 cm off
            size = (o.box_size.x, o.box_size.y + 0.02, o.box_size.z)  # 2 cm taller
            if int(o.id) == 1:
                frame[1] = (position, size)
            else:
                frame[2] = (
                    (o.position.x, o.position.y, o.position.z),
                    (o.box_size.x, o.box_size.y, o.box_size.z),
                )
        shapes.append(frame)
    run = tmp_path / 'run'
    assignment = json.dumps(
        {'1': {'ids': [1], 'from_frame': 1}, '2': {'ids': [2], 'from_frame': 1}}
    )
    _write_run(run, depth_bag, predictions, log_ms=10.0, assignment=assignment, shapes=shapes)
    report = evaluate(run)
    acc = report['accuracy_3d']
    one, two = acc['objects']['1'], acc['objects']['2']
    visible = sum(o.has_3d for t in truths[1:] for o in t.objects if o.id == 1)
    assert one['frames_3d'] == visible and one['frames_without_3d'] == 0
    assert one['centre_error_m']['mean'] == pytest.approx(0.05, abs=1e-6)
    assert one['extent_error_m'] == pytest.approx(0.02, abs=1e-6)
    assert two['centre_error_m']['max'] == pytest.approx(0.0, abs=1e-9)
    assert '3D (metres' in format_report(report)


@pytest.mark.ros  # runs the installed executables
def test_replay_remap_is_applied_by_the_tool_not_by_rcl(scenario_bag):
    bag, _ = scenario_bag
    with BagReader(bag) as reader:
        [image_topic] = [t for t, m in reader.topics.items() if m == 'sensor_msgs/msg/Image']
    result = _run_cli(
        'sam2_replay', bag, '--remap', f'{image_topic}:=/remapped/image', '--connect-timeout', '1'
    )
    assert result.returncode == 1
    assert 'Found remap rule' not in result.stderr + result.stdout, result.stderr
    assert 'no subscriber on /remapped/image' in result.stderr, result.stderr
    assert 'Traceback' not in result.stderr


def test_a_pip_install_ships_the_message_definitions_where_the_bag_tools_look(
    tmp_path, monkeypatch
):
    import zipfile

    from sam2_ros.tools import bag_io

    root = Path(__file__).resolve().parents[1]
    # A copy of the sources: setuptools writes build/ and *.egg-info next to setup.py.
    source = tmp_path / 'source'
    ignored = shutil.ignore_patterns(
        '.git', '.venv*', 'build*', 'install*', 'log*', '*.egg-info', '__pycache__', 'test'
    )
    shutil.copytree(root, source, ignore=ignored)
    pip_wheel = ['pip', 'wheel', '-q', '--no-deps', '--no-build-isolation', '-w', str(tmp_path)]
    subprocess.run(
        [sys.executable, '-m', *pip_wheel, str(source)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    [wheel] = tmp_path.glob('sam2_ros-*.whl')
    names = zipfile.ZipFile(wheel).namelist()
    shipped = sorted(n.rsplit('/', 1)[1] for n in names if '/data/share/sam2_ros/msg/' in n)
    assert shipped == sorted(p.name for p in (root / 'msg').glob('*.msg'))
    assert any('/data/share/sam2_ros/srv/AddPrompt.srv' in n for n in names)

    # That is <prefix>/share/sam2_ros/msg once installed: the tools look there before the
    # source tree (which a pip install does not have).
    monkeypatch.setattr(sys, 'prefix', str(tmp_path))
    dirs = bag_io._interface_dirs()
    assert dirs.index(tmp_path / 'share' / 'sam2_ros' / 'msg') < dirs.index(root / 'msg')
