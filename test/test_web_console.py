"""The browser console end to end: real headless Chromium, the web node, the real tracker.

The tracker runs in-process with untrained SAM 2.1 tiny (256 px) and YOLOv10-N on a stream of
160x120 frames (a textured square moving +2, +1 px per frame); the console node serves the
page on a free loopback port with a token; Debian's chromium, driven through Debian's
chromedriver by Selenium, loads it. Nothing is downloaded and nothing leaves localhost: the
browser resolves no host name but localhost and sends everything else to a dead proxy.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
from pathlib import Path
import re
import struct
import subprocess
import threading
import time
import urllib.error
import urllib.request

from node_harness import TrackerHarness
import numpy as np
from PIL import Image
from polling import wait_for
import pytest
from rclpy.parameter import Parameter
from tracker_fixtures import moving_frames

from sam2_ros.ros.node_process import installed_executable
from sam2_ros.srv import ResetTracking

pytestmark = [pytest.mark.ros, pytest.mark.timeout(300)]

CHROMIUM = '/usr/bin/chromium'
CHROMEDRIVER = '/usr/bin/chromedriver'
ROOT = Path(__file__).resolve().parents[1]
SCREENSHOT = ROOT / 'log' / 'web_console_screenshot.png'
TOKEN = 'test-token-0123456789abcdef'
FIRST_SEC = 1000
# 5 fps: with 2 CPU cores shared by SAM 2, Chromium and the test, a faster camera only makes
# the tracker drop frames; the tracker buffers 30 frames (6 s) for prompts on older frames.
CAMERA_PERIOD_SEC = 0.2
FRAMES = moving_frames(40)  # the square's top-left is (20 + 2i, 30 + i) on frame i


def frame_index(sec: int) -> int:
    """Return which frame the camera sends at `sec`: forwards, then backwards (no jumps)."""
    last = len(FRAMES) - 1
    step = (sec - FIRST_SEC) % (2 * last)
    return step if step <= last else 2 * last - step


def square_centre(sec: int) -> tuple[float, float]:
    i = frame_index(sec)
    return 35.0 + 2 * i, 45.0 + i


class ConsoleUnderTest:
    """The tracker, the console node on a free port, and a 5 fps camera stream."""

    def __init__(self) -> None:
        from sam2_ros.console.node import WebConsoleNode

        self.tracker = TrackerHarness(keyframe_interval=3)
        self.tracker.wait_connected()
        self.node = WebConsoleNode(
            context=self.tracker.context,
            namespace=self.tracker.namespace,
            parameter_overrides=[Parameter('port', value=0), Parameter('token', value=TOKEN)],
        )
        self.tracker.executor.add_node(self.node)
        self.url = self.node.start_server()
        self.ws_url = self.url.replace('http://', 'ws://') + 'ws'
        self._stop = threading.Event()
        self._camera = threading.Thread(target=self._stream, daemon=True)
        self._camera.start()

    def _stream(self) -> None:
        sec = FIRST_SEC
        while not self._stop.wait(CAMERA_PERIOD_SEC):
            self.tracker.publish(FRAMES[frame_index(sec)], sec)
            sec += 1

    def close(self) -> None:
        self._stop.set()
        self._camera.join()
        self.node.stop_server()
        self.tracker.executor.remove_node(self.node)
        self.node.destroy_node()
        self.tracker.close()


@pytest.fixture(scope='module')
def console():
    running = ConsoleUnderTest()
    yield running
    running.close()


def test_export_works_without_a_browser():
    """GET /export serves the newest tracked frame to curl, with no page ever opened."""
    console = ConsoleUnderTest()
    try:
        assert console.node.browser_count == 0
        outputs_after(console, 3)
        deadline = time.monotonic() + 20
        while True:
            try:
                reply = urllib.request.urlopen(f'{console.url}export?format=json&token={TOKEN}')
                break
            except urllib.error.HTTPError as error:  # 404 until a frame is paired
                assert error.code == 404 and time.monotonic() < deadline, error.read()
                time.sleep(0.2)
        document = json.load(reply)
        [image] = document['images']
        assert (image['width'], image['height']) == (160, 120)
        jpeg = urllib.request.urlopen(f'{console.url}export?format=jpg&token={TOKEN}').read()
        assert Image.open(io.BytesIO(jpeg)).size == (160, 120)
        assert console.node.browser_count == 0
    finally:
        console.close()


def outputs_after(console: ConsoleUnderTest, count: int) -> list:
    """Wait for `count` tracked_objects messages newer than now; return them."""
    start = len(console.tracker.outputs)
    assert wait_for(lambda: len(console.tracker.outputs) >= start + count, 30)
    return console.tracker.outputs[start : start + count]


def chromium():
    """Start Debian's headless chromium through Debian's chromedriver (never a download)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} missing: the browser console tests need Debian's chromium "
            'and chromium-driver; run scripts/setup.sh as root (it installs them)'
        )
    options = Options()
    options.binary_location = CHROMIUM
    for argument in (
        '--headless=new',
        '--no-sandbox',  # tests run as root
        '--disable-gpu',
        '--disable-dev-shm-usage',
        '--window-size=1280,1000',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-default-apps',
        '--disable-extensions',
        '--disable-sync',
        '--no-pings',
        # Nothing but the console: no host name resolves except localhost, and every
        # non-loopback request goes to a closed local port.
        '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1',
        '--proxy-server=127.0.0.1:9',
    ):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


@pytest.fixture(scope='module')
def page(console):
    from selenium.webdriver.common.by import By

    driver = chromium()
    driver.get(f'{console.url}#token={TOKEN}')
    view = driver.find_element(By.ID, 'view')
    assert wait_for(lambda: view.get_attribute('data-stamp'), 30), 'the page shows no frame'
    yield driver, By
    driver.quit()


@pytest.fixture
def fresh(console, page):
    """Reset the tracker and the page's selection before a test."""
    response = console.tracker.call(ResetTracking, 'reset_tracking', ResetTracking.Request())
    assert response.success, response.message
    driver, by = page
    driver.find_element(by.TAG_NAME, 'body').send_keys('n')
    return driver, by


# ------------------------------------------------------------------ page helpers


def frames_shown(driver, by) -> int:
    return int(driver.find_element(by.ID, 'view').get_attribute('data-frames'))


def shown_stamp(driver, by) -> tuple[int, int]:
    sec, nanosec = driver.find_element(by.ID, 'view').get_attribute('data-stamp').split('.')
    return int(sec), int(nanosec)


def press(driver, by, key: str) -> None:
    driver.find_element(by.TAG_NAME, 'body').send_keys(key)


def status_after(driver, by, action) -> str:
    """Run `action`, wait for the page's status to show a reply; return its text."""
    driver.execute_script("document.getElementById('status').dataset.ok = ''")
    action()
    status = driver.find_element(by.ID, 'status')
    assert wait_for(lambda: status.get_attribute('data-ok') in ('true', 'false'), 30)
    return status.text if status.get_attribute('data-ok') == 'true' else 'ERROR: ' + status.text


def pointer_at(driver, x: float, y: float, chain=None):
    """Return an ActionChains with the pointer moved onto image pixel (x, y) of the view."""
    from selenium.webdriver import ActionChains

    left, top, width, height, image_w, image_h = driver.execute_script(
        "const view = document.getElementById('view'); const r = view.getBoundingClientRect();"
        'return [r.left, r.top, r.width, r.height,'
        ' Number(view.dataset.imageWidth), Number(view.dataset.imageHeight)];'
    )
    chain = chain or ActionChains(driver)
    chain.w3c_actions.pointer_action.move_to_location(
        round(left + x * width / image_w), round(top + y * height / image_h)
    )
    return chain


def paused(driver, by) -> tuple[int, int]:
    """Pause the display and return the stamp of the frame it holds."""
    press(driver, by, ' ')
    time.sleep(0.3)  # a frame being decoded may still land
    return shown_stamp(driver, by)


def object_rows(driver, by) -> dict[int, str]:
    """Return the object list as {id: row text}, read at once (rows are rebuilt every frame)."""
    rows = driver.execute_script(
        "return [...document.querySelectorAll('#objects tbody tr')]"
        '.map((row) => [Number(row.dataset.id), row.innerText]);'
    )
    return {obj_id: text for obj_id, text in rows}


def numbers(text: str) -> list[float]:
    return [float(v) for v in re.findall(r'-?\d+(?:\.\d+)?', text)]


# ------------------------------------------------------------------ tests


def test_page_loads_and_streams_tracked_frames(console, page):
    driver, by = page
    assert driver.title == 'sam2_ros console'
    assert wait_for(lambda: frames_shown(driver, by) >= 3, 30), 'no frame reached the page'
    view = driver.find_element(by.ID, 'view')
    image_size = view.get_attribute('data-image-width'), view.get_attribute('data-image-height')
    assert image_size == ('160', '120')
    assert view.size['width'] > 320, 'the test needs a scaled view to check the scaling'
    assert driver.find_element(by.ID, 'connection').text == 'connected'
    shortcuts = driver.find_element(by.ID, 'shortcuts').text
    assert 'shift+click' in shortcuts and 'Delete' in shortcuts and 'Space' in shortcuts
    # The tracker runs untrained models: the page says so in a banner that does not go away.
    banner = driver.find_element(by.ID, 'untrained')
    assert wait_for(banner.is_displayed, 30), 'no untrained-weights banner'
    assert banner.text.startswith('UNTRAINED WEIGHTS') and 'meaningless' in banner.text
    assert driver.find_element(by.ID, 'tracker').text == 'tracker: active, WARN'
    errors = [entry for entry in driver.get_log('browser') if entry['level'] == 'SEVERE']
    assert not errors, errors


def test_click_creates_an_object_on_the_frame_the_operator_saw(console, fresh):
    driver, by = fresh
    sec, nanosec = paused(driver, by)
    x, y = square_centre(sec)
    text = status_after(driver, by, pointer_at(driver, x, y).click().perform)
    press(driver, by, ' ')  # resume
    match = re.match(
        r'added object (\d+).*foreground \(([\d.]+), ([\d.]+)\) on frame (\S+)\)', text
    )
    assert match, text
    obj_id = int(match.group(1))
    # Scaled on the server from the displayed canvas to image pixels (within a CSS pixel).
    assert abs(float(match.group(2)) - x) < 1.0 and abs(float(match.group(3)) - y) < 1.0
    assert match.group(4) == f'{sec}.{nanosec:09d}'
    assert 'frames ago, carried' in text  # the stream went on: the tracker carried it forward

    # SAM 2's three candidates; picking one (soon: the tracker buffers the clicked frame only
    # for prompt_history_frames) replaces the mask on the clicked frame.
    candidates = driver.find_elements(by.CSS_SELECTOR, '#candidates .candidate')
    assert len(candidates) == 3
    text = status_after(driver, by, lambda: press(driver, by, '2'))
    assert text.startswith(f'refined object {obj_id}'), text
    assert f'candidate 2 on frame {sec}.{nanosec:09d}' in text
    assert 'chosen' in candidates[1].get_attribute('class')

    assert wait_for(lambda: obj_id in object_rows(driver, by), 30)
    assert all(obj_id in {o.id for o in m.objects} for m in outputs_after(console, 2))


def test_drag_is_a_box_prompt_and_shift_click_a_background_point(console, fresh):
    from selenium.webdriver import Keys

    driver, by = fresh
    sec, _ = paused(driver, by)
    x, y = square_centre(sec)
    drag = pointer_at(driver, x - 16, y - 16).click_and_hold()
    drag = pointer_at(driver, x + 16, y + 16, drag).release()
    text = status_after(driver, by, drag.perform)
    match = re.match(r'added object (\d+).*\(box \[([\d, ]+)\] on frame', text)
    assert match, text
    box = numbers(match.group(2))
    assert np.allclose(box, [x - 16, y - 16, x + 16, y + 16], atol=1.0), box
    box_id = int(match.group(1))

    shift_click = pointer_at(driver, 5, 5).key_down(Keys.SHIFT).click().key_up(Keys.SHIFT)
    text = status_after(driver, by, shift_click.perform)
    assert text.startswith(f'refined object {box_id}') and 'background (' in text, text
    press(driver, by, ' ')
    assert wait_for(lambda: box_id in object_rows(driver, by), 30)
    driver.save_screenshot(str(SCREENSHOT))
    print(f'\nscreenshot of the console: {SCREENSHOT}')


def test_remove_and_reset_from_the_page(console, fresh):
    driver, by = fresh
    ids = []
    for _ in range(2):
        press(driver, by, 'n')
        sec, _ = paused(driver, by)
        text = status_after(driver, by, pointer_at(driver, *square_centre(sec)).click().perform)
        press(driver, by, ' ')
        assert text.startswith('added object'), text
        ids.append(int(numbers(text)[0]))
    assert wait_for(lambda: set(ids) <= set(object_rows(driver, by)), 30)

    paused(driver, by)  # the list is rebuilt with every frame shown
    remove = driver.find_element(by.CSS_SELECTOR, f'#objects tr[data-id="{ids[0]}"] .remove')
    assert status_after(driver, by, remove.click) == f'removed object {ids[0]}'
    press(driver, by, ' ')
    assert wait_for(lambda: set(object_rows(driver, by)) == {ids[1]}, 30)
    assert all({o.id for o in m.objects} == {ids[1]} for m in outputs_after(console, 2))

    reset = driver.find_element(by.ID, 'reset')
    assert status_after(driver, by, reset.click) == 'reset: removed 1 objects'
    assert wait_for(lambda: not object_rows(driver, by), 30)
    assert all(not m.objects for m in outputs_after(console, 2))
    assert 'new object' in driver.find_element(by.ID, 'target').text


# ------------------------------------------------------------------ WebSocket and HTTP


def connect(console, token=TOKEN, origin=None):
    from websockets.sync.client import connect as ws_connect

    url = console.ws_url + (f'?token={token}' if token else '')
    return ws_connect(url, origin=origin, max_size=None)


def next_text(socket, kind: str = 'reply') -> dict:
    """Return the next JSON message of type `kind`, skipping frames and other messages."""
    while True:
        message = socket.recv(timeout=30)
        if isinstance(message, str) and json.loads(message)['type'] == kind:
            return json.loads(message)


def next_frame(socket) -> dict:
    """Return the metadata of the next binary frame."""
    while True:
        message = socket.recv(timeout=30)
        if isinstance(message, bytes):
            length = struct.unpack('>I', message[:4])[0]
            assert message[4 + length : 4 + length + 2] == b'\xff\xd8'  # a JPEG follows
            return json.loads(message[4 : 4 + length])


def prompt(stamp, points=None, box=None, **extra) -> dict:
    """Return a prompt on a 320x240 canvas (twice the image); by default, on the square."""
    if points is None:
        x, y = square_centre(stamp['sec'])
        points = [{'x': 2 * x, 'y': 2 * y, 'label': 1}]
    command = {
        'type': 'prompt',
        'request_id': 1,
        'stamp': stamp,
        'canvas': {'width': 320, 'height': 240},
        'points': points,
    }
    if box is not None:
        command['box'] = box
    return command | extra


BAD_MESSAGES = [
    ('{"type": "prompt"', 'not valid JSON'),
    ('[1, 2]', 'must be a JSON object'),
    ('{"type": "fly"}', 'type must be one of'),
    ('{"type": "reset", "request_id": "x"}', 'request_id must be an integer'),
    ('{"type": "reset", "extra": 1}', "unknown fields for reset: ['extra']"),
    ('{"type": "remove", "object_id": 1.5}', 'object_id must be an integer'),
    ('{"type": "remove", "object_id": -1}', 'object_id = -1 is outside'),
    ('{"type": "choose_candidate", "index": 0}', 'no multimask candidates'),
    (' ' * 70000, 'exceeds the limit of 65536 bytes'),
]


def test_malformed_messages_get_error_replies_and_serving_goes_on(console, page):
    driver, by = page
    with connect(console) as socket:
        hello = next_text(socket, 'hello')
        assert hello['tracker'].endswith('/sam2_tracker')
        # Then the tracker's state from its /diagnostics: the harness runs untrained models.
        tracker = next_text(socket, 'tracker')
        assert tracker['untrained'] is True and tracker['lifecycle_state'] == 'active', tracker
        stamp = next_frame(socket)['stamp']
        bad = BAD_MESSAGES + [
            (
                json.dumps(prompt(stamp, points=[{'x': 'a', 'y': 1, 'label': 1}])),
                'must be a number',
            ),
            (json.dumps(prompt(stamp, points=[{'x': math.nan, 'y': 1, 'label': 1}])), 'NaN is'),
            (
                json.dumps(prompt(stamp, points=[{'x': 321, 'y': 1, 'label': 1}])),
                'outside [0, 320]',
            ),
            (json.dumps(prompt(stamp, points=[{'x': 1, 'y': 1, 'label': 3}])), 'label'),
            (json.dumps(prompt(stamp, points=[], box=[50, 50, 10, 10])), 'empty or inverted'),
            (json.dumps(prompt(stamp, points=[])), 'empty prompt'),
            (json.dumps(prompt({'sec': 5, 'nanosec': 0})), 'frame 5.000000000 is not one'),
            (json.dumps(prompt(stamp, object_id=999)), 'unknown object id 999'),
            (json.dumps({'type': 'remove', 'request_id': 2, 'object_id': 999}), 'unknown object'),
        ]
        for message, expected in bad:
            socket.send(message)
            answer = next_text(socket)
            assert answer['type'] == 'reply' and answer['ok'] is False, answer
            assert expected in answer['message'], (expected, answer)
        socket.send(b'\x00\x01')
        assert 'binary messages are not accepted' in next_text(socket)['message']
        socket.send(json.dumps({'type': 'reset', 'request_id': 7}))
        answer = next_text(socket)
        assert answer['ok'] and answer['request_id'] == 7
        next_frame(socket)  # still streaming to this socket

    shown = frames_shown(driver, by)
    assert wait_for(lambda: frames_shown(driver, by) > shown + 2, 30), 'the page stopped'


def test_a_message_beyond_the_socket_limit_closes_only_that_socket(console):
    from websockets.exceptions import ConnectionClosed

    with connect(console) as socket:
        next_text(socket, 'hello')
        socket.send('x' * 300_000)  # past uvicorn's 256 KiB frame limit: not even parsed
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                socket.recv(timeout=30)
    assert closed.value.rcvd.code == 1009
    with connect(console) as socket:  # the server goes on
        assert next_text(socket, 'hello')['protocol'] == 1
        next_frame(socket)


def test_a_browser_disconnecting_mid_request_disturbs_nothing(console):
    with connect(console) as socket:
        next_text(socket, 'hello')
        stamp = next_frame(socket)['stamp']
        socket.send(json.dumps(prompt(stamp)))
    # The prompt still lands; tracking and serving go on.
    start = len(console.tracker.outputs)
    assert wait_for(lambda: any(m.objects for m in console.tracker.outputs[start:]), 30)
    outputs_after(console, 3)
    with connect(console) as socket:
        assert next_text(socket, 'hello')['protocol'] == 1
        next_frame(socket)


def test_token_origin_and_export(console):
    from websockets.exceptions import ConnectionClosedError

    for token, origin, reason in (
        (None, None, 'missing or wrong token'),
        ('wrong-token-0123456789', None, 'missing or wrong token'),
        (TOKEN, 'http://attacker.example', "origin 'http://attacker.example' is not"),
    ):
        with connect(console, token, origin) as socket:
            with pytest.raises(ConnectionClosedError) as closed:
                socket.recv(timeout=10)
        assert closed.value.rcvd.code == 1008 and reason in closed.value.rcvd.reason

    with connect(console, origin=console.url.rstrip('/')) as socket:  # the page's own origin
        assert next_text(socket, 'hello')['protocol'] == 1
        stamp = next_frame(socket)['stamp']
        socket.send(json.dumps(prompt(stamp)))
        answer = next_text(socket)
        assert answer['ok'], answer['message']

    query = f'export?sec={stamp["sec"]}&nanosec={stamp["nanosec"]}'
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(console.url + query)
    assert refused.value.code == 401
    document = json.load(urllib.request.urlopen(f'{console.url}{query}&token={TOKEN}'))
    [image] = document['images']
    assert document['info']['untrained_weights'] is True
    assert 'UNTRAINED WEIGHTS' in document['info']['description']
    assert (image['width'], image['height']) == (160, 120)
    assert image['stamp'] == stamp and image['file_name'].endswith('.jpg')
    [annotation] = document['annotations']
    assert annotation['segmentation']['size'] == [120, 160]
    assert sum(annotation['segmentation']['counts']) == 120 * 160
    png = urllib.request.Request(
        f'{console.url}{query}&format=png', headers={'Authorization': f'Bearer {TOKEN}'}
    )
    labels = np.array(Image.open(io.BytesIO(urllib.request.urlopen(png).read())))
    assert labels.shape == (120, 160) and annotation['track_id'] in np.unique(labels)
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(f'{console.url}export?sec=5&nanosec=0&token={TOKEN}')
    assert missing.value.code == 404


@pytest.mark.parametrize(
    ('parameters', 'reason'),
    [
        (['host:=0.0.0.0'], "host '0.0.0.0' is not a loopback address"),
        (['host:=0.0.0.0', 'token:=short'], 'token is 5 characters; use at least 16'),
        (['image_qos_reliability:=sometimes'], 'image_qos_reliability must be one of'),
        (['port:=70000'], 'Parameter port out of range'),
    ],
)
def test_the_console_refuses_bad_settings_and_says_why(parameters, reason):
    command = [installed_executable('sam2_web_console'), '--ros-args']
    for parameter in parameters:
        command += ['-p', parameter]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert reason in result.stderr + result.stdout


def test_readme_lists_the_console_parameters_with_their_defaults():
    from sam2_ros.console.parameters import PARAMETERS

    readme = (ROOT / 'README.md').read_text()
    section = readme.split('### Console parameters', 1)[1].split('\n#', 1)[0]
    rows = dict(re.findall(r'^\| `([a-z_]+)` \| \w+ \| ([^|]+?) \|', section, flags=re.MULTILINE))

    def shown(value) -> str:
        if isinstance(value, str):
            return f'`{value}`' if value else '(empty)'
        return str(value)

    assert rows == {param.name: shown(param.default) for param in PARAMETERS}


def test_the_tracker_status_follows_its_diagnostics_and_goes_stale(ros_context, monkeypatch):
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
    from polling import spin_until
    from rclpy.executors import SingleThreadedExecutor

    from sam2_ros.console import node as web_console

    monkeypatch.setattr(web_console, 'STALE_AFTER_SEC', 1.5)
    node = web_console.WebConsoleNode(context=ros_context, namespace='/stale_test')
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    try:
        assert json.loads(node.tracker_message())['level'] == 'UNKNOWN'
        publisher = node.create_publisher(DiagnosticArray, '/diagnostics', 10)
        values = {'lifecycle_state': 'active', 'untrained_weights': 'false', 'sam2': 'SAM 2.1 S'}
        mine = DiagnosticStatus(
            level=DiagnosticStatus.OK,
            name='/stale_test/sam2_tracker: tracking',
            message='tracking',
            values=[KeyValue(key=k, value=v) for k, v in values.items()],
        )
        other = DiagnosticStatus(level=DiagnosticStatus.ERROR, name='/other_tracker: tracking')

        def status() -> dict:
            publisher.publish(DiagnosticArray(status=[other, mine]))
            return json.loads(node.tracker_message())

        assert spin_until(executor, lambda: status()['level'] == 'OK', 10)  # not the other's
        assert status()['sam2'] == 'SAM 2.1 S' and status()['untrained'] is False
        start = time.monotonic()
        assert spin_until(executor, lambda: 'STALE' in node.tracker_message(), 10)
        assert time.monotonic() - start >= 1.0
        assert 'no diagnostics from the tracker for' in node.tracker_message()
    finally:
        executor.shutdown()
        node.destroy_node()


def test_many_browsers_prompting_at_once_all_get_answers(console):
    """Six sockets prompt at the same moment, with hostile messages in between."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(connect(console)) for _ in range(6)]
        stamps = [next_frame(socket)['stamp'] for socket in sockets]
        for socket in sockets:
            socket.send('{"type": ["prompt"]}')  # an unhashable type used to raise
            socket.send('[' * 30000 + ']' * 30000)  # deeper than json's recursion
        for socket, stamp in zip(sockets, stamps, strict=True):
            socket.send(json.dumps(prompt(stamp)))
        for socket in sockets:
            first, second, third = (next_text(socket) for _ in range(3))
            assert not first['ok'] and 'type must be one of' in first['message']
            assert not second['ok'] and 'nested too deeply' in second['message']
            assert third['ok'], third
    with connect(console) as socket:
        socket.send(json.dumps({'type': 'reset', 'request_id': 3}))
        assert next_text(socket)['ok']
        next_frame(socket)  # still streaming
