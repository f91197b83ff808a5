"""What ``/readyz`` checks: the database, its migrations, the broker and the Flows API.

Each check returns a ``Check`` (ok, and what failed in words that name no patient). The
database and the migrations are asked on every probe, on the request's own connection: one
``SELECT 1`` and one read of ``django_migrations``, a few milliseconds. The broker and the Flows
API are outside services: each is asked at most every ``READYZ_CACHE_SECONDS`` per process, in a
background thread with a ``READYZ_TIMEOUT``, and a probe in between is answered from the last
outcome at once (only a process's very first probe waits for an answer). So a probe every second
from three gunicorn processes calls Sohar three times per period, not three times a second.

The Flows check uses only what Sohar documents (flows-api.md): Get Run of a Run id that cannot
exist, with our client credentials. Its documented 404 ("unknown id") proves the API is reachable
and our token is accepted; the token comes from ``POST /oauth/token`` and is cached for its
lifetime like the application's own. No retries, no Run created, nothing changed.
"""

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder

from flows_integration import client as flows_client

# A Run id nobody has: Get Run answers 404 for it (flows-api.md: "404 unknown id").
PROBE_RUN_ID = "00000000-0000-0000-0000-000000000000"


@dataclass(frozen=True)
class Check:
    ok: bool
    detail: str = "ok"
    ms: float = 0.0
    cached: bool = False


def _timed(check: Callable[[], str | None]) -> Check:
    """Run ``check``: None or a detail string when it passed; an exception when it failed."""
    started = time.monotonic()
    try:
        detail = check() or "ok"
        ok = True
    except Exception as exc:  # noqa: BLE001 - any failure is the finding
        detail = _describe(exc)
        ok = False
    return Check(ok, detail, round((time.monotonic() - started) * 1000, 1))


def _describe(exc: BaseException) -> str:
    # The exception's type and our own words only: a driver's message can quote a query.
    if isinstance(exc, flows_client.FlowsError):
        return str(exc)  # never the server's message (flows_integration/client.py)
    if isinstance(exc, ProbeFailed):
        return str(exc)
    return type(exc).__name__


class ProbeFailed(Exception):
    """A check's own finding, safe to show."""


# --- Database and migrations -----------------------------------------------------------------


def database(conn: BaseDatabaseWrapper = connection) -> Check:
    def check() -> None:
        with conn.cursor() as cursor:
            cursor.execute("SELECT 1")

    return _timed(check)


_leaves: set[tuple[str, str]] | None = None
_leaves_lock = threading.Lock()


def _migration_leaves() -> set[tuple[str, str]]:
    """The last migration of each app on disk. Read once per process (the code does not change
    under a running process; the graph takes ~60 ms to load)."""
    global _leaves
    with _leaves_lock:
        if _leaves is None:
            loader = MigrationLoader(None, ignore_no_migrations=True)
            _leaves = set(loader.graph.leaf_nodes())
        return _leaves


def migrations(conn: BaseDatabaseWrapper = connection) -> Check:
    def check() -> None:
        leaves = _migration_leaves()
        applied = set(MigrationRecorder(conn).applied_migrations())
        missing = sorted(f"{app}.{name}" for app, name in leaves - applied)
        if missing:
            raise ProbeFailed(f"not applied: {', '.join(missing)}")

    return _timed(check)


# --- Outside services, cached ----------------------------------------------------------------


def broker(url: str | None = None, timeout: float | None = None) -> Check:
    """Open a connection to the Celery broker (``url``, else ``CELERY_BROKER_URL``) and close
    it. The file-system broker of ``make run`` has no server to ask."""
    import kombu

    target = url or settings.CELERY_BROKER_URL
    wait = settings.READYZ_TIMEOUT if timeout is None else timeout

    def check() -> str | None:
        if target.startswith("filesystem:"):
            return "ok (file-system broker)"
        # Redis reads its socket timeouts from the transport options (it ignores
        # connect_timeout); AMQP its read and write timeouts. Without them a server that
        # accepts and then says nothing would hold the check for good.
        options = {
            "socket_timeout": wait,
            "socket_connect_timeout": wait,
            "read_timeout": wait,
            "write_timeout": wait,
        }
        with kombu.Connection(target, connect_timeout=wait, transport_options=options) as conn:
            # One attempt: kombu's retries would outlast the probe.
            conn.ensure_connection(max_retries=1, interval_start=0)
            conn.default_channel  # noqa: B018 - opens the channel (Redis: a PING)
        return None

    return _timed(check)


def flows(url: str | None = None, timeout: float | None = None) -> Check:
    """Get Run of ``PROBE_RUN_ID``: a 404 means reachable and our credentials accepted."""

    def check() -> None:
        try:
            _probe_client(url, timeout).get_run(PROBE_RUN_ID)
        except flows_client.FlowsError as exc:
            if exc.status == 404:
                return
            raise
        # A 2xx for a Run nobody can have: reachable all the same.

    return _timed(check)


_clients: dict[tuple[str, str, float], flows_client.FlowsClient] = {}
_clients_lock = threading.Lock()


def _probe_client(url: str | None, timeout: float | None) -> flows_client.FlowsClient:
    """A client of its own, kept for its token: short timeouts and no retries, so a slow API
    fails the check instead of holding it."""
    base = url or settings.FLOWS_API_URL
    wait = settings.READYZ_TIMEOUT if timeout is None else timeout
    key = (base, settings.FLOWS_CLIENT_ID, wait)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = flows_client.FlowsClient(
                base,
                settings.FLOWS_CLIENT_ID,
                settings.FLOWS_CLIENT_SECRET,
                connect_timeout=wait,
                read_timeout=wait,
                max_retries=0,
                counted=False,
            )
        return client


class CachedCheck:
    """A check run in the background at most every ``ttl`` seconds; readers get the last outcome
    at once. Until the first outcome exists a reader waits for it, ``timeout`` at most; a check
    still running after ``timeout`` is reported as failing, never as its last, stale outcome."""

    _pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="readyz")

    def __init__(self, run: Callable[[], Check]) -> None:
        self._run = run
        self._lock = threading.Lock()
        self._last: Check | None = None
        self._at = 0.0
        self._pending: Future[Check] | None = None
        self._started = 0.0

    def result(self, *, ttl: float, timeout: float) -> Check:
        now = time.monotonic()
        with self._lock:
            fresh = self._last is not None and now - self._at < ttl
            if not fresh and self._pending is None:
                self._pending = self._pool.submit(self._refresh)
                self._started = now
            last, pending, started = self._last, self._pending, self._started
        if pending is not None and now - started > timeout:
            return Check(False, f"no answer within {timeout:g} s")
        if last is not None:
            return Check(last.ok, last.detail, last.ms, cached=True)
        assert pending is not None
        try:
            return pending.result(timeout=timeout)
        except FutureTimeout:
            return Check(False, f"no answer within {timeout:g} s")

    def _refresh(self) -> Check:
        try:
            outcome = self._run()
        except Exception as exc:  # noqa: BLE001 - never leave _pending set
            outcome = Check(False, type(exc).__name__)
        with self._lock:
            self._last, self._at, self._pending = outcome, time.monotonic(), None
        return outcome

    def forget(self) -> None:
        with self._lock:
            self._last, self._at = None, 0.0


CACHED: dict[str, CachedCheck] = {
    "broker": CachedCheck(lambda: broker()),
    "flows": CachedCheck(lambda: flows()),
}


def readiness() -> tuple[bool, dict[str, Any]]:
    """Every check's outcome, and whether those in ``READYZ_REQUIRED`` all passed."""
    ttl, timeout = settings.READYZ_CACHE_SECONDS, settings.READYZ_TIMEOUT + 0.5
    db = database()
    outcomes = {
        "database": db,
        # Without a database there is nothing to read the migrations from.
        "migrations": migrations() if db.ok else Check(False, "database unavailable"),
        "broker": CACHED["broker"].result(ttl=ttl, timeout=timeout),
        "flows": CACHED["flows"].result(ttl=ttl, timeout=timeout),
    }
    ready = all(outcomes[name].ok for name in settings.READYZ_REQUIRED)
    body = {
        name: {
            "ok": check.ok,
            "detail": check.detail,
            "ms": check.ms,
            "required": name in settings.READYZ_REQUIRED,
            **({"cached": True} if check.cached else {}),
        }
        for name, check in outcomes.items()
    }
    return ready, body
