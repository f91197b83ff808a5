"""A deliberately faulty Flows API on 127.0.0.1, for the client's fault tests.

Left alone it answers like Sohar's service: a token endpoint, Create, Get and Update Run, and no
extension endpoints (404). ``plan()`` scripts what the next matching requests get instead: an
answer of any status, headers or malformed body, a hang (for read timeouts), a connection reset,
a connection closed without an answer. Every request is recorded (method, path, headers, body).

Each answer closes its connection (HTTP/1.0), so every attempt of the client is one connection
and a stopped server refuses the next one.
"""

import json
import socket
import struct
import threading
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

CLIENT_ID = "faulty-client"
CLIENT_SECRET = "faulty-secret"


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str  # with its query string
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def route(self) -> str:
        return f"{self.method} {self.path}"


Behaviour = Callable[["_Handler", Recorded], None]


# --- Behaviours ------------------------------------------------------------------------------


def respond(status: int, body: Any = None, headers: dict[str, str] | None = None) -> Behaviour:
    """Answer ``status`` with ``body`` as JSON (no body when None)."""
    content = b"" if body is None else json.dumps(body).encode()
    return raw(status, content, headers=headers)


def raw(
    status: int,
    content: bytes,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> Behaviour:
    """Answer ``status`` with exactly these bytes (malformed JSON, HTML, nothing)."""

    def behave(handler: "_Handler", request: Recorded) -> None:
        handler.answer(status, content, content_type, headers or {})

    return behave


def hang(seconds: float = 5.0) -> Behaviour:
    """Read the request, then answer nothing for ``seconds`` (or until the server stops)."""

    def behave(handler: "_Handler", request: Recorded) -> None:
        handler.server.stopping.wait(seconds)  # type: ignore[attr-defined]
        handler.close_connection = True

    return behave


def reset() -> Behaviour:
    """Read the request, then reset the connection (RST, no answer)."""

    def behave(handler: "_Handler", request: Recorded) -> None:
        handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        handler.connection.close()
        handler.close_connection = True

    return behave


def drop() -> Behaviour:
    """Read the request, then close the connection cleanly without answering."""

    def behave(handler: "_Handler", request: Recorded) -> None:
        handler.connection.shutdown(socket.SHUT_RDWR)
        handler.close_connection = True

    return behave


def slow(seconds: float) -> Behaviour:
    """Wait ``seconds``, then answer as the server normally would."""

    def behave(handler: "_Handler", request: Recorded) -> None:
        handler.server.stopping.wait(seconds)  # type: ignore[attr-defined]
        handler.server.owner.default(handler, request)  # type: ignore[attr-defined]

    return behave


# --- The server ------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    server_version = "FaultyFlows/1"

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Recorded(
            method=self.command,
            path=self.path,
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
        )
        owner: FaultyServer = self.server.owner  # type: ignore[attr-defined]
        owner.record(request)
        owner.behaviour_for(request)(self, request)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

    def answer(
        self, status: int, content: bytes, content_type: str, headers: dict[str, str]
    ) -> None:
        self.send_response(status)
        if content:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(content)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(content)

    def answer_json(self, status: int, body: Any) -> None:
        self.answer(status, json.dumps(body).encode(), "application/json", {})

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # bursts of concurrent clients must not overflow the backlog


class FaultyServer:
    """A scriptable Flows API in a thread. Use as a context manager, or ``start()``/``stop()``."""

    def __init__(self, port: int = 0) -> None:
        self._httpd = _HTTPServer(("127.0.0.1", port), _Handler)
        self._httpd.owner = self  # type: ignore[attr-defined]
        self._httpd.stopping = threading.Event()  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._lock = threading.Lock()
        self._plans: list[tuple[str, deque[Behaviour]]] = []
        self._always: list[tuple[str, Behaviour]] = []
        self.requests: list[Recorded] = []
        self.tokens_issued: list[str] = []
        self.revoked: set[str] = set()
        self.token_lifetime: int = 3600
        # What Get Run answers for any id; tests add fields (unknown ones, our extensions).
        self.run_fields: dict[str, Any] = {"status": "PENDING", "output": {}}

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "FaultyServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop answering and close the listening socket: new connections are refused."""
        self._httpd.stopping.set()  # type: ignore[attr-defined]
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)

    def __enter__(self) -> "FaultyServer":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- Scripting ----------------------------------------------------------------------------

    def plan(self, route: str, *behaviours: Behaviour) -> None:
        """The next requests whose ``"METHOD /path?query"`` starts with ``route`` get these
        behaviours, one each, in order; after them the server answers normally again."""
        with self._lock:
            self._plans.append((route, deque(behaviours)))

    def always(self, route: str, behaviour: Behaviour) -> None:
        """Every request matching ``route`` gets ``behaviour`` (after any plan is used up)."""
        with self._lock:
            self._always.append((route, behaviour))

    def revoke_tokens(self) -> None:
        """Every token issued so far is refused from now on (403), as after expiry."""
        with self._lock:
            self.revoked.update(self.tokens_issued)

    # -- What happened ------------------------------------------------------------------------

    def record(self, request: Recorded) -> None:
        with self._lock:
            self.requests.append(request)

    def requests_to(self, route: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.route.startswith(route)]

    def count(self, route: str) -> int:
        return len(self.requests_to(route))

    # -- Answering ----------------------------------------------------------------------------

    def behaviour_for(self, request: Recorded) -> Behaviour:
        with self._lock:
            for route, queue in self._plans:
                if queue and request.route.startswith(route):
                    return queue.popleft()
            for route, behaviour in self._always:
                if request.route.startswith(route):
                    return behaviour
        return self.default

    def default(self, handler: _Handler, request: Recorded) -> None:
        """Sohar's documented behaviour, without our extension endpoints."""
        path = request.path.split("?", 1)[0]
        parts = path.strip("/").split("/")
        if request.method == "POST" and path == "/oauth/token":
            self._token(handler, request)
            return
        if not self._authorized(request):
            handler.answer_json(403, {"error": "unauthorized", "message": "Unauthorized"})
            return
        match request.method, parts:
            case "POST", ["v1", "flows", _template_id, "runs"]:
                handler.answer_json(201, {"flowRunId": str(uuid.uuid4())})
            case "GET", ["v1", "flow-runs", run_id]:
                handler.answer_json(200, {"flowRunId": run_id, **self.run_fields})
            case "PUT", ["v1", "flow-runs", run_id]:
                handler.answer_json(200, {"flowRunId": run_id, "status": "IN_PROGRESS"})
            case _:
                handler.answer_json(404, {"error": "not_found", "message": "Not Found"})

    def _token(self, handler: _Handler, request: Recorded) -> None:
        try:
            body = request.json
        except ValueError:
            body = {}
        if body.get("client_id") != CLIENT_ID or body.get("client_secret") != CLIENT_SECRET:
            handler.answer_json(403, {"error": "unauthorized", "message": "Unauthorized"})
            return
        with self._lock:
            token = f"tok-{len(self.tokens_issued) + 1}-{uuid.uuid4().hex}"
            self.tokens_issued.append(token)
        handler.answer_json(
            200, {"access_token": token, "token_type": "Bearer", "expires_in": self.token_lifetime}
        )

    def _authorized(self, request: Recorded) -> bool:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        with self._lock:
            return scheme == "Bearer" and token in self.tokens_issued and token not in self.revoked


def closed_port() -> int:
    """A loopback port with nothing listening: connecting to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class CountingTransport(httpx.BaseTransport):
    """The real network, counting every attempt the client makes, refused ones included."""

    def __init__(self) -> None:
        self._inner = httpx.HTTPTransport()
        self.attempts: list[str] = []
        self.statuses: list[int] = []
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.attempts.append(f"{request.method} {request.url.path}")
        response = self._inner.handle_request(request)
        with self._lock:
            self.statuses.append(response.status_code)
        return response

    def count(self, route: str) -> int:
        with self._lock:
            return sum(1 for attempt in self.attempts if attempt.startswith(route))

    def close(self) -> None:
        self._inner.close()
