"""The browser console's web side: the FastAPI app (page, WebSocket, export) and its server.

The app holds no ROS objects; it asks the `sam2_web_console` node (`console`) to admit
connections, answer commands and build exports, and streams the frames the node offers.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
import os
import socket
import threading
import time

from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles

from sam2_ros.console.protocol import MAX_MESSAGE_BYTES, ConsoleError, Stamp

STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'static')
# The page runs its own scripts only and draws frames from blob: images.
PAGE_HEADERS = {
    'Content-Security-Policy': (
        "default-src 'self'; img-src 'self' blob: data:; connect-src 'self'; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
    'Cache-Control': 'no-store',
}
EXPORT_KINDS = ('json', 'png', 'jpg')
MAX_BROWSERS = 8  # each gets its own copy of every streamed frame
# WebSocket close codes (RFC 6455): policy violation, try again later.
CLOSE_POLICY, CLOSE_TRY_LATER = 1008, 1013


class Browser:
    """One connected page: its socket, a send lock, the newest unsent frame, candidates."""

    def __init__(self, websocket: WebSocket) -> None:
        """Wrap an accepted WebSocket."""
        self.websocket = websocket
        self.candidates = None  # the last prompt's multimask candidates, if it had several
        self._send_lock = asyncio.Lock()
        self._pending: bytes | None = None
        self._frame_ready = asyncio.Event()
        self._posts: set[asyncio.Task] = set()  # referenced until done (asyncio keeps weak refs)

    def offer(self, data: bytes) -> None:
        """Make `data` the next frame to send, replacing one not sent yet (loop thread)."""
        self._pending = data
        self._frame_ready.set()

    async def send_text(self, text: str) -> None:
        """Send a JSON message, never interleaved with a frame."""
        async with self._send_lock:
            await self.websocket.send_text(text)

    def post(self, text: str) -> None:
        """Send a JSON message without waiting for it (loop thread); a gone page is ignored."""
        task = asyncio.get_running_loop().create_task(self._send_quietly(text))
        self._posts.add(task)
        task.add_done_callback(self._posts.discard)

    async def _send_quietly(self, text: str) -> None:
        try:
            await self.send_text(text)
        except (WebSocketDisconnect, OSError, RuntimeError):
            pass  # the page went away; the receiving side ends the connection

    async def stream_frames(self) -> None:
        """Send frames as they are offered, the newest only, until cancelled."""
        while True:
            await self._frame_ready.wait()
            self._frame_ready.clear()
            data, self._pending = self._pending, None
            if data is None:
                continue
            try:
                async with self._send_lock:
                    await self.websocket.send_bytes(data)
            except (WebSocketDisconnect, OSError, RuntimeError):
                return  # the page went away; the receiving side ends the connection


def _presented_token(request) -> str | None:
    """Return the token of a request: `?token=` or `Authorization: Bearer ...`."""
    token = request.query_params.get('token')
    if token is None:
        scheme, _, value = request.headers.get('authorization', '').partition(' ')
        if scheme.lower() == 'bearer':
            token = value.strip()
    return token


def _export_stamp(query) -> Stamp | None:
    """Return the stamp named by ?sec=&nanosec= (None: the newest); raise ValueError."""
    if 'sec' not in query and 'nanosec' not in query:
        return None
    try:
        sec, nanosec = int(query['sec']), int(query['nanosec'])
    except (KeyError, ValueError):
        raise ValueError('give both sec and nanosec as integers, or neither') from None
    if not (0 <= sec < 2**31 and 0 <= nanosec < 1_000_000_000):
        raise ValueError(f'stamp {sec}.{nanosec} is out of range')
    return Stamp(sec, nanosec)


def create_app(console, lifespan) -> FastAPI:
    """Build the app of one console node."""
    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    @app.middleware('http')
    async def check_host(request: Request, call_next):
        # A console on loopback answers only loopback names (no DNS rebinding).
        if console.admit_host(request.headers.get('host')):
            return await call_next(request)
        return PlainTextResponse('this console answers only on a loopback name', 421)

    @app.get('/')
    async def index() -> FileResponse:
        return FileResponse(os.path.join(STATIC_DIR, 'index.html'), headers=PAGE_HEADERS)

    @app.get('/export')
    async def export(request: Request) -> Response:
        if not console.token_ok(_presented_token(request)):
            return PlainTextResponse('missing or wrong token', 401)
        query = request.query_params
        kind = query.get('format', 'json')
        if kind not in EXPORT_KINDS:
            return PlainTextResponse(f'format must be one of {", ".join(EXPORT_KINDS)}', 400)
        try:
            stamp = _export_stamp(query)
            content, media_type, name = await asyncio.to_thread(console.export, stamp, kind)
        except ValueError as error:
            return PlainTextResponse(str(error), 400)
        except ConsoleError as error:
            return PlainTextResponse(str(error), 404)
        disposition = {'Content-Disposition': f'attachment; filename="{name}"'}
        return Response(content, media_type=media_type, headers=disposition)

    @app.websocket('/ws')
    async def websocket(socket: WebSocket) -> None:
        await socket.accept()
        refusal = console.admit(
            socket.headers.get('host'), socket.headers.get('origin'), _presented_token(socket)
        )
        if refusal is not None:
            await socket.close(CLOSE_POLICY, refusal)
            return
        if console.browser_count >= MAX_BROWSERS:
            await socket.close(CLOSE_TRY_LATER, f'{MAX_BROWSERS} browsers are connected already')
            return
        browser = Browser(socket)
        console.add_browser(browser)
        sender = asyncio.create_task(browser.stream_frames())
        try:
            await browser.send_text(console.hello())
            await browser.send_text(console.tracker_message())
            await _serve(console, browser)
        except (WebSocketDisconnect, OSError, RuntimeError):
            pass  # the page went away; tracking goes on
        finally:
            console.remove_browser(browser)
            sender.cancel()

    # follow_symlink: colcon --symlink-install links the files to the source tree.
    static = StaticFiles(directory=STATIC_DIR, follow_symlink=True)
    app.mount('/static', static, name='static')
    return app


async def _serve(console, browser: Browser) -> None:
    """Answer the browser's messages, one at a time and in order, until it disconnects."""
    while True:
        message = await browser.websocket.receive()
        if message['type'] == 'websocket.disconnect':
            return
        data = message.get('text')
        if data is None:
            data = message.get('bytes') or b''
        await browser.send_text(await console.answer(browser, data))


class WebServer:
    """uvicorn serving the console's app in a thread of its own, on a socket bound first."""

    def __init__(self, console, host: str, port: int, on_loop) -> None:
        """Serve `console`'s app on host:port; `on_loop(loop or None)` hears the loop's life."""
        self._console, self._host, self._port, self._on_loop = console, host, port, on_loop
        self._server = None
        self._thread: threading.Thread | None = None

    def start(self, timeout: float) -> int:
        """Bind, start and wait until serving; return the bound port (for port 0).

        Raises OSError naming the address when it cannot listen, RuntimeError when the
        server does not start within `timeout` s.
        """
        import uvicorn

        host, port = self._host, self._port
        try:
            family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
            sock = socket.create_server((host, port), family=family)
        except OSError as error:
            raise OSError(f'cannot listen on {host}:{port}: {error}') from error

        @asynccontextmanager
        async def lifespan(app):
            self._on_loop(asyncio.get_running_loop())
            yield
            self._on_loop(None)

        config = uvicorn.Config(
            create_app(self._console, lifespan),
            log_level='warning',
            access_log=False,
            lifespan='on',
            ws_max_size=4 * MAX_MESSAGE_BYTES,  # beyond this the socket closes with 1009
            ws_per_message_deflate=False,  # frames are JPEG: compressing them wastes CPU
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={'sockets': [sock]}, name='web_console', daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f'the web server did not start on {host}:{port}')
            time.sleep(0.02)
        return sock.getsockname()[1]

    def stop(self) -> None:
        """Close the browsers' connections and stop serving."""
        if self._server is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout=5.0)
        self._server = self._thread = None
