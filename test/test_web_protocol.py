"""The browser console's protocol, scaling, export and access rules, without ROS."""

from __future__ import annotations

import io
import json
import struct

import numpy as np
from PIL import Image
import pytest

from sam2_ros.console.access import (
    check_bind_settings,
    host_header_allowed,
    is_loopback,
    origin_allowed,
    token_matches,
)
from sam2_ros.console.export import coco_document, label_png
from sam2_ros.console.protocol import (
    MAX_MESSAGE_BYTES,
    MAX_POINTS,
    UNKNOWN_TRACKER,
    ChooseCandidateCommand,
    FrameView,
    ObjectView,
    PromptCommand,
    ProtocolError,
    RemoveCommand,
    ResetCommand,
    Stamp,
    pack_frame,
    parse_command,
    reply,
    to_image_pixels,
    tracker_status,
)
from sam2_ros.core.palette import object_color
from sam2_ros.core.rle import decode_rle

STAMP = {'sec': 12, 'nanosec': 500}
CANVAS = {'width': 800, 'height': 600}
# The key/values of a tracker's DiagnosticStatus, as node_diagnostics writes them.
UNTRAINED = tracker_status(
    1,
    'UNTRAINED model weights: outputs are meaningless',
    {
        'lifecycle_state': 'active',
        'untrained_weights': 'true',
        'sam2': 'SAM 2.1 tiny (untrained)',
        'detector': 'YOLOv10-N (untrained)',
        'images_received': '12',
    },
)
TRAINED = tracker_status(0, 'tracking', {'lifecycle_state': 'active', 'sam2': 'SAM 2.1 small'})


def prompt_message(**fields) -> str:
    message = {
        'type': 'prompt',
        'request_id': 3,
        'stamp': STAMP,
        'canvas': CANVAS,
        'points': [{'x': 400, 'y': 300.5, 'label': 1}],
    }
    return json.dumps(message | fields)


def test_a_prompt_parses_into_a_command():
    command = parse_command(prompt_message(label='mug', box=[10, 20, 30.5, 40]))
    assert command == PromptCommand(
        request_id=3,
        object_id=0,
        label='mug',
        stamp=Stamp(12, 500),
        canvas=(800.0, 600.0),
        points=((400.0, 300.5, 1),),
        box=(10.0, 20.0, 30.5, 40.0),
    )
    assert command.stamp.ns == 12_000_000_500 and str(command.stamp) == '12.000000500'


def test_the_other_commands_parse():
    assert parse_command('{"type": "reset"}') == ResetCommand(None)
    assert parse_command('{"type": "remove", "object_id": 4, "request_id": 1}') == RemoveCommand(
        1, 4
    )
    assert parse_command('{"type": "choose_candidate", "index": 2}') == ChooseCandidateCommand(
        None, 2
    )


@pytest.mark.parametrize(
    ('message', 'expected'),
    [
        (b'{"type": "reset"}', 'binary messages are not accepted'),
        ('{"type": "reset"', 'not valid JSON'),
        ('"reset"', 'must be a JSON object, got str'),
        ('{}', "type must be one of ['choose_candidate', 'prompt', 'remove', 'reset'], got None"),
        ('{"type": "reset", "request_id": true}', 'request_id must be an integer, got bool'),
        ('{"type": "reset", "request_id": -1}', 'request_id = -1 is outside'),
        ('{"type": "reset", "object_id": 1}', "unknown fields for reset: ['object_id']"),
        ('{"type": "remove", "object_id": 0}', 'object_id = 0 is outside [1, 4294967295]'),
        ('{"type": "remove", "object_id": 4294967296}', 'is outside [1, 4294967295]'),
        ('{"type": "remove"}', 'object_id must be an integer, got null'),
        ('{"type": "choose_candidate", "index": "1"}', 'index must be an integer, got str'),
        (prompt_message(points=[{'x': float('nan'), 'y': 1, 'label': 1}]), 'NaN is not a number'),
        (prompt_message(points=[{'x': 1e999, 'y': 1, 'label': 1}]), 'Infinity is not a number'),
        (prompt_message(points=[{'x': 801, 'y': 1, 'label': 1}]), 'points[0].x = 801 is outside'),
        (prompt_message(points=[{'x': 1, 'y': -0.5, 'label': 1}]), 'points[0].y = -0.5'),
        (prompt_message(points=[{'x': 1, 'y': 1, 'label': 2}]), 'points[0].label'),
        (prompt_message(points=[{'x': 1, 'y': 1, 'label': True}]), 'got bool'),
        (prompt_message(points=[{'x': 1, 'y': 1}]), "points[0] fields: missing ['label']"),
        (prompt_message(points=[{'x': 1, 'y': 1, 'label': 1, 'z': 0}]), "unknown ['z']"),
        (prompt_message(points=[[1, 1, 1]]), 'points[0] must be an object, got list'),
        (prompt_message(points={'x': 1}), 'points must be a list'),
        (
            prompt_message(points=[{'x': 1, 'y': 1, 'label': 1}] * (MAX_POINTS + 1)),
            f'at most {MAX_POINTS} points',
        ),
        (prompt_message(points=[]), 'empty prompt'),
        (prompt_message(points=[], box=[5, 5, 5, 9]), 'is empty or inverted'),
        (prompt_message(box=[1, 2, 3]), 'box must be a list [x_min, y_min, x_max, y_max]'),
        (prompt_message(box=[0, 0, 900, 10]), 'box[2] = 900 is outside [0, 800]'),
        (prompt_message(canvas={'width': 0, 'height': 600}), 'canvas.width = 0 is outside'),
        (prompt_message(canvas={'width': 800}), "canvas fields: missing ['height']"),
        (prompt_message(stamp={'sec': 1, 'nanosec': 10**9}), 'stamp.nanosec = 1000000000'),
        (prompt_message(stamp={'sec': 1.5, 'nanosec': 0}), 'stamp.sec must be an integer'),
        (prompt_message(stamp=None), 'stamp must be an object, got null'),
        (prompt_message(label=7), 'label must be a string'),
        (prompt_message(label='a\nb'), 'label must be printable text'),
        (prompt_message(label='x' * 101), 'at most 100 chars'),
        (prompt_message(object_id=-3), 'object_id = -3 is outside'),
        (' ' * (MAX_MESSAGE_BYTES + 1), f'exceeds the limit of {MAX_MESSAGE_BYTES} bytes'),
        # Counted in UTF-8 bytes, as on the wire: 30000 three-byte characters are 90000 bytes.
        ('\u20ac' * 30000, f'message of 90000 bytes exceeds the limit of {MAX_MESSAGE_BYTES}'),
    ],
)
def test_bad_messages_are_rejected_with_the_reason(message, expected):
    with pytest.raises(ProtocolError) as error:
        parse_command(message)
    assert expected in str(error.value)


def test_the_error_keeps_a_readable_request_id_only():
    with pytest.raises(ProtocolError) as error:
        parse_command(prompt_message(points=[]))
    assert error.value.request_id == 3
    with pytest.raises(ProtocolError) as error:
        parse_command('{"type": "fly", "request_id": "3"}')
    assert error.value.request_id is None


def command(points=(), box=None, canvas=(800.0, 600.0)) -> PromptCommand:
    return PromptCommand(1, 0, '', Stamp(1, 0), canvas, tuple(points), box)


def test_canvas_coordinates_scale_to_image_pixels():
    prompt = to_image_pixels(
        command([(400.0, 300.0, 1), (800.0, 600.0, 0)], box=(80.0, 60.0, 160.0, 120.0)),
        (160, 120),
    )
    assert prompt.points.tolist() == [[80.0, 60.0], [160.0, 120.0]]  # the edge maps exactly
    assert prompt.labels.tolist() == [1, 0]
    assert prompt.box.tolist() == [16.0, 12.0, 32.0, 24.0]
    assert prompt.describe() == (
        'box [16, 12, 32, 24] + foreground (80.0, 60.0) + background (160.0, 120.0)'
    )


def test_edges_of_awkward_canvas_sizes_map_onto_the_image_edge():
    for canvas_width in (3.0, 7.0, 300.0, 913.37, 1000.1):
        prompt = to_image_pixels(
            command([(canvas_width, 49.0, 1)], canvas=(canvas_width, 49.0)), (160, 120)
        )
        assert prompt.points.tolist() == [[160.0, 120.0]]


def test_a_prompt_outside_the_image_is_rejected():
    # Parsing keeps coordinates inside the canvas; the image check stands on its own.
    with pytest.raises(ProtocolError, match=r'\(161, 60\) lies outside the 160x120 image'):
        to_image_pixels(command([(161.0, 60.0, 1)], canvas=(160.0, 120.0)), (160, 120))


def frame_view(masks: dict[int, np.ndarray], labels=None) -> FrameView:
    height, width = next(iter(masks.values())).shape
    objects = []
    for obj_id, mask in masks.items():
        ys, xs = np.nonzero(mask)
        box = (int(xs.min()), int(ys.min()), int(np.ptp(xs)) + 1, int(np.ptp(ys)) + 1)
        objects.append(
            ObjectView(
                obj_id=obj_id,
                label=(labels or {}).get(obj_id, ''),
                class_name='cup' if obj_id == 2 else '',
                state='TRACKING',
                score=0.9,
                visibility=1.0,
                box=box,
                area=int(mask.sum()),
                mask=mask,
            )
        )
    return FrameView(Stamp(7, 5), 'camera', width, height, True, tuple(objects))


def two_masks():
    first = np.zeros((6, 8), dtype=bool)
    first[1:4, 2:5] = True
    second = np.zeros((6, 8), dtype=bool)
    second[3:6, 4:8] = True
    return {1: first, 2: second}


def test_coco_export_round_trips_the_masks():
    masks = two_masks()
    document = coco_document(frame_view(masks, labels={1: 'mug'}), 'frame.jpg', TRAINED)
    [image] = document['images']
    assert (image['file_name'], image['width'], image['height']) == ('frame.jpg', 8, 6)
    assert image['stamp'] == {'sec': 7, 'nanosec': 5} and image['frame_id'] == 'camera'
    categories = {c['id']: c['name'] for c in document['categories']}
    assert sorted(categories.values()) == ['cup', 'mug']
    for annotation in document['annotations']:
        mask = masks[annotation['track_id']]
        segmentation = annotation['segmentation']
        assert segmentation['size'] == [6, 8]
        assert np.array_equal(decode_rle(6, 8, segmentation['counts']), mask)
        assert annotation['area'] == mask.sum() and annotation['iscrowd'] == 0
        assert categories[annotation['category_id']] == ('mug' if mask is masks[1] else 'cup')
    assert document['annotations'][0]['bbox'] == [2, 1, 3, 3]
    json.dumps(document, allow_nan=False)


def test_label_png_has_ids_as_pixel_values_and_a_palette():
    masks = two_masks()
    image = Image.open(io.BytesIO(label_png(frame_view(masks), TRAINED)))
    assert image.mode == 'P'
    labels = np.array(image)
    expected = np.zeros((6, 8), dtype=np.uint8)
    expected[masks[1]] = 1
    expected[masks[2]] = 2  # the higher id wins the overlap
    assert np.array_equal(labels, expected)
    palette = image.getpalette()
    # The overlay's colours (BGR there, RGB in the PNG palette).
    assert palette[:3] == [0, 0, 0] and tuple(palette[3:6]) == object_color(1)[::-1]


def test_label_png_turns_16_bit_above_id_255():
    masks = two_masks()
    view = frame_view({300: masks[1]})
    labels = np.array(Image.open(io.BytesIO(label_png(view, TRAINED))))
    assert labels.dtype.itemsize == 2 and set(np.unique(labels)) == {0, 300}


def test_the_tracker_status_comes_from_its_diagnostics():
    assert UNTRAINED.to_json() == {
        'type': 'tracker',
        'seen': True,
        'level': 'WARN',
        'message': 'UNTRAINED model weights: outputs are meaningless',
        'lifecycle_state': 'active',
        'untrained': True,
        'sam2': 'SAM 2.1 tiny (untrained)',
        'detector': 'YOLOv10-N (untrained)',
    }
    assert not TRAINED.untrained and TRAINED.level == 'OK'
    assert tracker_status(7, '', {}).level == '7'  # a level this console does not know
    stale = UNTRAINED.stale(6.2)
    assert stale.level == 'STALE' and stale.untrained  # still untrained: it says so
    assert stale.message.startswith('no diagnostics from the tracker for 6 s (last: UNTRAINED')
    assert not UNKNOWN_TRACKER.seen and UNKNOWN_TRACKER.level == 'UNKNOWN'


@pytest.mark.parametrize(
    ('tracker', 'flag', 'note'),
    [
        (UNTRAINED, True, 'UNTRAINED WEIGHTS: the masks are meaningless'),
        (TRAINED, False, 'sam2: SAM 2.1 small'),
        (UNKNOWN_TRACKER, None, 'weights unknown'),
    ],
)
def test_exports_say_which_weights_made_the_masks(tracker, flag, note):
    view = frame_view(two_masks())
    info = coco_document(view, 'frame.jpg', tracker)['info']
    assert info['untrained_weights'] is flag and note in info['description']
    source = Image.open(io.BytesIO(label_png(view, tracker))).text['Source']
    assert source.startswith('frame 7.000000005 (camera); ') and note in source


def test_frame_packets_carry_the_metadata_then_the_jpeg():
    view = frame_view(two_masks())
    packet = pack_frame(view, b'\xff\xd8jpeg')
    length = struct.unpack('>I', packet[:4])[0]
    meta = json.loads(packet[4 : 4 + length])
    assert packet[4 + length :] == b'\xff\xd8jpeg'
    assert meta['stamp'] == {'sec': 7, 'nanosec': 5} and meta['width'] == 8
    assert [o['id'] for o in meta['objects']] == [1, 2]
    assert meta['objects'][0]['mask']['size'] == [6, 8]


def test_replies_are_json():
    assert json.loads(reply(4, False, 'no', error='bad_request')) == {
        'type': 'reply',
        'request_id': 4,
        'ok': False,
        'message': 'no',
        'error': 'bad_request',
    }


@pytest.mark.parametrize(
    ('host', 'loopback'),
    [
        ('127.0.0.1', True),
        ('127.0.1.1', True),
        ('localhost', True),
        ('::1', True),
        ('[::1]', True),
        ('0.0.0.0', False),
        ('192.168.1.10', False),
        ('::', False),
        ('robot.local', False),
    ],
)
def test_loopback_hosts(host, loopback):
    assert is_loopback(host) is loopback


def test_serving_beyond_loopback_needs_a_long_token():
    check_bind_settings('127.0.0.1', '')
    check_bind_settings('0.0.0.0', 'a' * 16)
    with pytest.raises(ValueError, match="host '0.0.0.0' is not a loopback address"):
        check_bind_settings('0.0.0.0', '')
    with pytest.raises(ValueError, match='token is 5 characters; use at least 16'):
        check_bind_settings('127.0.0.1', 'short')
    with pytest.raises(ValueError, match='host is empty'):
        check_bind_settings(' ', '')


def test_tokens_hosts_and_origins():
    assert token_matches('', None) and token_matches('secret-token', 'secret-token')
    assert not token_matches('secret-token', None) and not token_matches('secret-token', 'x')
    assert host_header_allowed('127.0.0.1:8080', loopback_only=True)
    assert host_header_allowed('localhost:8080', loopback_only=True)
    assert host_header_allowed('[::1]:8080', loopback_only=True)
    assert not host_header_allowed('rebind.example:8080', loopback_only=True)
    assert not host_header_allowed(None, loopback_only=True)
    assert host_header_allowed('robot.local:8080', loopback_only=False)
    assert origin_allowed(None, '127.0.0.1:8080')
    assert origin_allowed('http://127.0.0.1:8080', '127.0.0.1:8080')
    assert not origin_allowed('http://evil.example', '127.0.0.1:8080')
    assert not origin_allowed('http://127.0.0.1:9999', '127.0.0.1:8080')
    assert not origin_allowed('null', '127.0.0.1:8080')
