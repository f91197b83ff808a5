"""Flowdesk's client for the Flows API: Sohar Health's service in production, our engine in
development and tests (the contract is /work/shared/flows-api.md).

Pure I/O: httpx, typed answers, and errors that say whether a retry can help. No Django models;
``django.conf.settings`` is read once, in ``get_client()``.

Retries, by what a repeat can do to the server:

- GET calls and the token call are harmless to repeat: they are retried on timeouts, connection
  errors, 429, 502, 503 and 504, with capped exponential backoff and jitter, honouring
  ``Retry-After``.
- Create Run and Update Run are not: Sohar has no idempotency keys, and a second Update Run
  patches input twice. They are retried only when the connection could not be opened, because
  then nothing was sent. Anything that fails after sending raises ``FlowsError`` with
  ``outcome_unknown=True``; the caller calls Get Run before it tries again.
- On 401 or 403 the token is renewed once and the call repeated once (a refused token means the
  call was not applied, so this holds for Create and Update Run too).

Logs carry method, path template, status, attempt and duration, never bodies, ids or input:
bodies of this API are patient data. For the same reason ``str(error)`` never contains the
server's ``message`` (which may echo input values); read ``error.message`` where it is safe to
show.
"""

import email.utils
import json
import logging
import os
import random
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Self
from urllib.parse import quote

import httpx

logger = logging.getLogger(__name__)

TERMINAL_STATUSES = frozenset({"COMPLETE", "ERROR"})

# Statuses after which an idempotent call is repeated. 500 is left out: it is a fault of the
# server's own, and repeating it rarely helps (it is still a TransientFlowsError for the caller).
RETRY_STATUSES = frozenset({429, 502, 503, 504})

# Renew a token this long before it expires (or at half its lifetime, when that is shorter), so
# that a call never leaves with a token about to lapse on the way.
TOKEN_RENEW_MARGIN = 60.0
# Sohar documents expires_in; should an answer lack it, assume a short life (a 403 renews anyway).
TOKEN_DEFAULT_LIFETIME = 300.0

USER_AGENT = "flowdesk-flows-client/1"

# Transport errors raised before any byte of the request left: repeating is always safe.
_NOT_SENT: tuple[type[httpx.TransportError], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
)
# Errors of our own making (bad URL, invalid request): repeating cannot help.
_OUR_FAULT: tuple[type[httpx.TransportError], ...] = (
    httpx.UnsupportedProtocol,
    httpx.LocalProtocolError,
)


# --- Errors ----------------------------------------------------------------------------------


class FlowsError(Exception):
    """A call to the Flows API failed.

    ``status``, ``error`` and ``param`` come from the answer when there was one (``param`` names
    the first bad field of a 400). ``message`` is the server's message, or ours; it may echo
    input values, so it is left out of ``str(error)``, which is safe to log and store.

    ``outcome_unknown`` is True when the request may have reached the server and been applied
    (a Create or Update Run that timed out, lost its connection after sending, or got a 5xx):
    call Get Run before trying again. ``retry_after`` is the server's ``Retry-After`` in seconds,
    when it sent one.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error: str | None = None,
        param: str | None = None,
        outcome_unknown: bool = False,
        retry_after: float | None = None,
        summary: str | None = None,
    ) -> None:
        self.message = message
        self.status = status
        self.error = error
        self.param = param
        self.outcome_unknown = outcome_unknown
        self.retry_after = retry_after
        self.summary = summary or message
        super().__init__(self.summary)

    @property
    def retryable(self) -> bool:
        """Whether the same call may succeed later (the caller still decides when)."""
        return False

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only arguments would be lost by Exception's default pickling (Celery, pools).
        return (_rebuild_error, (type(self), dict(self.__dict__)))


class TransientFlowsError(FlowsError):
    """A failure that may pass: timeout, connection error, 5xx or 429."""

    @property
    def retryable(self) -> bool:
        return True


class NotSupported(FlowsError):
    """The server lacks one of our extension endpoints (Sohar's own service, for one)."""


def _rebuild_error(cls: type[FlowsError], state: dict[str, Any]) -> FlowsError:
    error = cls.__new__(cls)
    Exception.__init__(error, state.get("summary", ""))
    error.__dict__.update(state)
    return error


# --- Answers ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CreatedRun:
    flow_run_id: str


@dataclass(frozen=True)
class UpdatedRun:
    flow_run_id: str
    status: str


@dataclass(frozen=True)
class RunError:
    """One entry of a Run's ``errors``: ``state`` names the state that failed."""

    status: int | None
    param: str | None
    error: str | None
    state: str | None


@dataclass(frozen=True)
class RunInfo:
    """Get Run's answer. The fields after ``errors`` are our extensions: None when the server
    (Sohar) does not send them, or sends them in a shape we do not recognise."""

    flow_run_id: str
    status: str
    output: dict[str, Any] = field(default_factory=dict)
    errors: tuple[RunError, ...] = ()
    state_id: str | None = None
    template_id: str | None = None
    version: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    # The Run's context: its input and what each state produced (state id → result).
    input_data: dict[str, Any] | None = None
    states: dict[str, Any] | None = None

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


@dataclass(frozen=True)
class TemplateSummary:
    template_id: str
    name: str
    description: str | None
    version: int


@dataclass(frozen=True)
class TemplateDocument:
    template_id: str
    name: str
    version: int
    document: dict[str, Any]
    description: str | None = None


# --- The client ------------------------------------------------------------------------------


class FlowsClient:
    """A Flows API client holding one connection pool and one cached token; thread-safe.

    ``max_retries`` counts repeats, so a call makes at most ``max_retries + 1`` attempts.
    ``backoff_cap`` caps the wait between attempts, and a ``Retry-After`` longer than it ends
    the retries at once (``TransientFlowsError.retry_after`` says how long the server asked for).
    ``transport`` replaces the network, e.g. ``httpx.WSGITransport`` or a test double.
    """

    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 20.0,
        max_retries: int = 3,
        backoff_base: float = 0.5,
        backoff_cap: float = 8.0,
        transport: httpx.BaseTransport | None = None,
        counted: bool = True,
    ) -> None:
        self._credentials = {"client_id": client_id, "client_secret": client_secret}
        # Whether calls count in the Flows API metrics: the readiness probe's do not, or its
        # calls would make up most of the error rate and latency when staff are few.
        self.counted = counted
        self.max_retries = max(0, max_retries)
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout, pool=connect_timeout),
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            transport=transport,
            follow_redirects=False,
        )
        # One token for all threads; the lock makes renewal single-flight, so a burst of calls
        # that all find the token expired (or all get 403) fetches one new token, not N.
        self._token_lock = threading.Lock()
        self._token: str | None = None
        self._token_expires_at = 0.0  # time.monotonic() after which the token is renewed

    # -- Runs ---------------------------------------------------------------------------------

    def create_run(
        self, template_id: str, input_data: dict[str, Any], *, version: int | None = None
    ) -> CreatedRun:
        """Create Run: start ``template_id`` with ``input_data``; returns the new ``flowRunId``.

        ``version`` pins a template version (our extension, sent as ``?version=N``; Sohar
        ignores it). Never repeated once sent: on ``outcome_unknown`` a Run may exist.
        """
        operation = "POST /v1/flows/{templateId}/runs"
        params = {"version": str(version)} if version is not None else None
        response = self._call(
            "POST",
            f"/v1/flows/{_segment(template_id)}/runs",
            operation,
            payload={"inputData": input_data},
            params=params,
            idempotent=False,
        )
        body = self._answer(response, operation, idempotent=False)
        return CreatedRun(flow_run_id=_required_str(body, "flowRunId", operation, response, True))

    def get_run(self, flow_run_id: str) -> RunInfo:
        """Get Run: the Run's status, output and errors (the truth a mirror follows)."""
        operation = "GET /v1/flow-runs/{flowRunId}"
        response = self._call(
            "GET", f"/v1/flow-runs/{_segment(flow_run_id)}", operation, idempotent=True
        )
        body = self._answer(response, operation, idempotent=True)
        return _run_info(body, operation, response)

    def update_run(self, flow_run_id: str, input: dict[str, Any]) -> UpdatedRun:
        """Update Run: give a Run paused in ``PENDING`` the input its callback state waits for.

        Not idempotent, so never repeated once sent: on ``outcome_unknown`` call Get Run first
        (still ``PENDING`` at the same state means the input did not arrive). A Run that is not
        ``PENDING`` answers 409 (our engine); input failing the state's schema answers 400 with
        ``param`` naming the first bad field.
        """
        operation = "PUT /v1/flow-runs/{flowRunId}"
        response = self._call(
            "PUT",
            f"/v1/flow-runs/{_segment(flow_run_id)}",
            operation,
            payload={"input": input},
            idempotent=False,
        )
        body = self._answer(response, operation, idempotent=False)
        return UpdatedRun(
            flow_run_id=_required_str(body, "flowRunId", operation, response, True),
            status=_required_str(body, "status", operation, response, True),
        )

    # -- Templates (our extension) ------------------------------------------------------------

    def list_templates(self) -> list[TemplateSummary]:
        """Every template with its latest version. Our extension: raises ``NotSupported``
        against a server without it."""
        operation = "GET /v1/flows"
        response = self._call("GET", "/v1/flows", operation, idempotent=True)
        if _lacks_endpoint(response, known_params=()):
            raise _not_supported(response, operation)
        body = self._answer(response, operation, idempotent=True)
        items = body.get("data")
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            raise _bad_shape(operation, response, "'data' is not a list of objects", False)
        return [
            TemplateSummary(
                template_id=_required_str(item, "templateId", operation, response, False),
                name=_required_str(item, "name", operation, response, False),
                description=_optional_str(item.get("description")),
                version=_required_version(item, operation, response),
            )
            for item in items
        ]

    def get_template(self, template_id: str, version: int | None = None) -> TemplateDocument:
        """One template version's whole document (the latest without ``version``). Our
        extension: raises ``NotSupported`` against a server without it, ``FlowsError`` 404 for an
        unknown template or version."""
        operation = "GET /v1/flows/{templateId}"
        params = {"version": str(version)} if version is not None else None
        response = self._call(
            "GET", f"/v1/flows/{_segment(template_id)}", operation, params=params, idempotent=True
        )
        # Our engine's 404 names what it did not find; a server without the endpoint does not.
        if _lacks_endpoint(response, known_params=("templateId", "version")):
            raise _not_supported(response, operation)
        body = self._answer(response, operation, idempotent=True)
        return _template_document(body, operation, response)

    def publish_template(self, template_id: str, source: str) -> TemplateDocument:
        """Publish ``source`` (the YAML or JSON text) as the template's next version; returns
        the number the server gave it and the document. Our extension: raises ``NotSupported``
        against a server without it (Sohar publishes in its own tools).

        A document the server refuses raises ``FlowsError`` 400 with ``param`` ``source`` and a
        ``message`` of one ``location: problem`` line each. Not idempotent, so never repeated
        once sent: on ``outcome_unknown`` the version may exist (a document that names its
        ``metadata.version`` is refused if sent again, so it cannot be published twice).
        """
        operation = "POST /v1/flows/{templateId}/versions"
        response = self._call(
            "POST",
            f"/v1/flows/{_segment(template_id)}/versions",
            operation,
            payload={"source": source},
            idempotent=False,
        )
        # Our engine never answers 404 here (publishing creates a template): any 404 is a
        # server without the endpoint.
        if _lacks_endpoint(response, known_params=()):
            raise _not_supported(response, operation)
        body = self._answer(response, operation, idempotent=False)
        # The version was published whatever the body looks like: a bad one is not retryable.
        return _template_document(body, operation, response, outcome_unknown=True)

    # -- Lifecycle ----------------------------------------------------------------------------

    def check_credentials(self) -> None:
        """Ask the server for a fresh token with our client credentials (the admin's connection
        test); raises ``FlowsError`` (403 for credentials it refuses)."""
        with self._token_lock:
            self._fetch_token()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- Token --------------------------------------------------------------------------------

    def _current_token(self) -> str:
        with self._token_lock:
            if self._token is None or time.monotonic() >= self._token_expires_at:
                self._fetch_token()
            assert self._token is not None
            return self._token

    def _renewed_token(self, refused: str) -> str:
        """A token other than ``refused``; fetched only if no other thread already did."""
        with self._token_lock:
            if self._token is None or self._token == refused:
                self._fetch_token()
            assert self._token is not None
            return self._token

    def _fetch_token(self) -> None:
        operation = "POST /oauth/token"
        asked_at = time.monotonic()
        response = self._send(
            "POST", "/oauth/token", operation, payload=self._credentials, idempotent=True
        )
        body = self._answer(response, operation, idempotent=True)
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise _bad_shape(operation, response, "no 'access_token'", False)
        lifetime = body.get("expires_in")
        if isinstance(lifetime, bool) or not isinstance(lifetime, int | float) or lifetime <= 0:
            lifetime = TOKEN_DEFAULT_LIFETIME
        margin = min(TOKEN_RENEW_MARGIN, lifetime / 2)
        self._token = token
        self._token_expires_at = asked_at + lifetime - margin
        logger.info("flows token renewed, valid %.0f s", lifetime)

    # -- Sending ------------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        operation: str,
        *,
        idempotent: bool,
        payload: Any = None,
        params: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send with the current token; on 401/403 renew it once and send once more."""

        def send(token: str) -> httpx.Response:
            return self._send(
                method,
                path,
                operation,
                payload=payload,
                params=params,
                idempotent=idempotent,
                token=token,
            )

        token = self._current_token()
        response = send(token)
        if response.status_code in (401, 403):
            logger.info("flows %s -> %d: renewing the token once", operation, response.status_code)
            response = send(self._renewed_token(token))
        return response

    def _send(
        self,
        method: str,
        path: str,
        operation: str,
        *,
        idempotent: bool,
        payload: Any = None,
        params: Mapping[str, str] | None = None,
        token: str | None = None,
    ) -> httpx.Response:
        """One call with its retries. Returns the last answer, whatever its status; raises
        ``FlowsError`` when no answer came."""
        headers = {"Authorization": f"Bearer {token}"} if token is not None else None
        attempt = 0
        while True:
            attempt += 1
            started = time.monotonic()
            try:
                response = self._http.request(
                    method, path, json=payload, params=params, headers=headers
                )
            except RuntimeError as exc:
                if not self._http.is_closed:
                    raise
                # Closed under our feet (reset_client() in another thread): nothing was sent.
                self._observe(operation, started, None, "closed")
                raise TransientFlowsError(f"{operation} was not sent (client closed)") from exc
            except _OUR_FAULT as exc:
                raise FlowsError(f"{operation}: request refused by httpx: {exc}") from exc
            except httpx.TransportError as exc:
                sent = not isinstance(exc, _NOT_SENT)
                kind = type(exc).__name__
                self._observe(
                    operation,
                    started,
                    None,
                    "timeout" if isinstance(exc, httpx.TimeoutException) else "connection",
                )
                logger.warning(
                    "flows %s failed (%s) in %.0f ms, attempt %d",
                    operation,
                    kind,
                    _ms_since(started),
                    attempt,
                )
                if attempt <= self.max_retries and (idempotent or not sent):
                    time.sleep(self._backoff(attempt))
                    continue
                what = "was not sent" if not sent else "got no answer"
                raise TransientFlowsError(
                    f"{operation} {what} ({kind})", outcome_unknown=sent and not idempotent
                ) from exc

            status = response.status_code
            self._observe(operation, started, status)
            level = (
                logging.DEBUG
                if status < 400
                else logging.WARNING
                if status >= 500 or status == 429
                else logging.INFO
            )
            logger.log(
                level,
                "flows %s -> %d in %.0f ms, attempt %d",
                operation,
                status,
                _ms_since(started),
                attempt,
            )
            if idempotent and status in RETRY_STATUSES and attempt <= self.max_retries:
                wait = _retry_after(response)
                if wait is None:
                    wait = self._backoff(attempt)
                elif wait > self.backoff_cap:
                    # The server asks for longer than we wait in line: the caller reschedules.
                    return response
                time.sleep(wait)
                continue
            return response

    def _observe(
        self, operation: str, started: float, status: int | None, error: str | None = None
    ) -> None:
        """Count one attempt for Prometheus, labelled by the operation (a path template, never
        a URL with ids). Imported at the call: importing the client needs no Django settings."""
        if not self.counted:
            return
        from config import metrics

        metrics.flows_api_attempt(
            operation, seconds=time.monotonic() - started, status=status, error=error
        )

    def _backoff(self, attempt: int) -> float:
        return backoff_delay(attempt, base=self.backoff_base, cap=self.backoff_cap)

    def _answer(
        self, response: httpx.Response, operation: str, *, idempotent: bool
    ) -> dict[str, Any]:
        """The JSON object of a 2xx answer; any other answer raises its ``FlowsError``."""
        if not response.is_success:
            raise _error_of(response, operation, idempotent=idempotent)
        try:
            body = json.loads(response.content)
        except ValueError:
            raise _bad_shape(
                operation, response, "the answer is not JSON", not idempotent
            ) from None
        if not isinstance(body, dict):
            raise _bad_shape(operation, response, "the answer is not an object", not idempotent)
        return body


# --- Reading answers -------------------------------------------------------------------------


def backoff_delay(attempt: int, *, base: float, cap: float) -> float:
    """Capped exponential back-off with equal jitter: between half and all of the step, so
    callers that failed together do not come back together."""
    step = min(cap, base * 2 ** (attempt - 1))
    return step / 2 + random.uniform(0, step / 2)


def _segment(value: str) -> str:
    """An id as one path segment: nothing in it can reach another path."""
    return quote(str(value), safe="")


def _ms_since(started: float) -> float:
    return (time.monotonic() - started) * 1000


def _error_body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = json.loads(response.content)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _error_of(response: httpx.Response, operation: str, *, idempotent: bool) -> FlowsError:
    """Sohar's error object ``{"error", "param", "message"}`` as a ``FlowsError``."""
    status = response.status_code
    body = _error_body(response)
    error = _optional_str(body.get("error"))
    param = _optional_str(body.get("param"))
    summary = f"{operation} answered {status}"
    if error:
        summary += f" {error}"
    if param:
        summary += f" (param {param})"
    message = _optional_str(body.get("message")) or summary
    transient = status >= 500 or status == 429
    cls = TransientFlowsError if transient else FlowsError
    return cls(
        message,
        status=status,
        error=error,
        param=param,
        # A 5xx may come after the server (or the service behind a gateway) applied the call.
        outcome_unknown=status >= 500 and not idempotent,
        retry_after=_retry_after(response) if transient else None,
        summary=summary,
    )


def _bad_shape(
    operation: str, response: httpx.Response, what: str, outcome_unknown: bool
) -> FlowsError:
    status = response.status_code
    cls = TransientFlowsError if status >= 500 else FlowsError
    message = f"{operation} answered {status} but {what}"
    return cls(message, status=status, outcome_unknown=outcome_unknown)


def _lacks_endpoint(response: httpx.Response, *, known_params: tuple[str, ...]) -> bool:
    status = response.status_code
    if status in (405, 501):
        return True
    return status == 404 and _error_body(response).get("param") not in known_params


def _not_supported(response: httpx.Response, operation: str) -> NotSupported:
    message = f"{operation} answered {response.status_code}: the server lacks this extension"
    return NotSupported(message, status=response.status_code)


def _retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (a number, or an HTTP date), or None when absent or unreadable."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _optional_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _required_str(
    body: Mapping[str, Any],
    key: str,
    operation: str,
    response: httpx.Response,
    outcome_unknown: bool,
) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise _bad_shape(operation, response, f"'{key}' is missing", outcome_unknown)
    return value


def _version_number(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    return None


def _required_version(
    body: Mapping[str, Any],
    operation: str,
    response: httpx.Response,
    outcome_unknown: bool = False,
) -> int:
    number = _version_number(body.get("version"))
    if number is None:
        raise _bad_shape(
            operation, response, "'version' is not a positive integer", outcome_unknown
        )
    return number


def _template_document(
    body: Mapping[str, Any],
    operation: str,
    response: httpx.Response,
    *,
    outcome_unknown: bool = False,
) -> TemplateDocument:
    document = body.get("document")
    if not isinstance(document, dict):
        raise _bad_shape(operation, response, "'document' is not an object", outcome_unknown)
    return TemplateDocument(
        template_id=_required_str(body, "templateId", operation, response, outcome_unknown),
        name=_required_str(body, "name", operation, response, outcome_unknown),
        version=_required_version(body, operation, response, outcome_unknown),
        document=document,
        description=_optional_str(body.get("description")),
    )


def _timestamp(value: Any) -> datetime | None:
    """An ISO 8601 timestamp, aware (UTC assumed when the server gives no offset)."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _run_errors(value: Any, operation: str, response: httpx.Response) -> tuple[RunError, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise _bad_shape(operation, response, "'errors' is not a list of objects", False)
    return tuple(
        RunError(
            status=item["status"]
            if isinstance(item.get("status"), int) and not isinstance(item.get("status"), bool)
            else None,
            param=_optional_str(item.get("param")),
            error=_optional_str(item.get("error")),
            state=_optional_str(item.get("state")),
        )
        for item in value
    )


def _run_info(body: dict[str, Any], operation: str, response: httpx.Response) -> RunInfo:
    output = body.get("output")
    if output is None:
        output = {}  # Sohar: "always present"; tolerate its absence all the same
    if not isinstance(output, dict):
        raise _bad_shape(operation, response, "'output' is not an object", False)
    return RunInfo(
        flow_run_id=_required_str(body, "flowRunId", operation, response, False),
        status=_required_str(body, "status", operation, response, False),
        output=output,
        errors=_run_errors(body.get("errors"), operation, response),
        # Our extensions: read when present and well formed, never required (Sohar lacks them).
        state_id=_optional_str(body.get("stateId")),
        template_id=_optional_str(body.get("templateId")),
        version=_version_number(body.get("version")),
        created_at=_timestamp(body.get("createdAt")),
        updated_at=_timestamp(body.get("updatedAt")),
        input_data=_optional_object(body.get("inputData")),
        states=_optional_object(body.get("states")),
    )


def _optional_object(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


# --- The module's default client -------------------------------------------------------------

_default_client: FlowsClient | None = None
_default_pid: int | None = None
_default_lock = threading.Lock()


def get_client() -> FlowsClient:
    """The process's client, built once from settings (``FLOWS_API_URL``, ``FLOWS_CLIENT_ID``,
    ``FLOWS_CLIENT_SECRET``, ``FLOWS_CONNECT_TIMEOUT``, ``FLOWS_READ_TIMEOUT``) on first use.

    A forked child (a prefork Celery worker) builds its own: a connection pool must not be
    shared across processes.
    """
    global _default_client, _default_pid
    client = _default_client
    if client is not None and _default_pid == os.getpid():
        return client
    with _default_lock:
        if _default_client is None or _default_pid != os.getpid():
            from django.conf import settings

            _default_client = FlowsClient(
                settings.FLOWS_API_URL,
                settings.FLOWS_CLIENT_ID,
                settings.FLOWS_CLIENT_SECRET,
                connect_timeout=getattr(settings, "FLOWS_CONNECT_TIMEOUT", 5.0),
                read_timeout=getattr(settings, "FLOWS_READ_TIMEOUT", 20.0),
            )
            _default_pid = os.getpid()
        return _default_client


def reset_client() -> None:
    """Close and forget the default client, so that the next call reads settings again.

    A call another thread still makes on the old client raises ``TransientFlowsError`` (nothing
    was sent), and its retry goes through the new client.
    """
    global _default_client, _default_pid
    with _default_lock:
        old, _default_client, _default_pid = _default_client, None, None
    if old is not None:
        old.close()


def create_run(
    template_id: str, input_data: dict[str, Any], *, version: int | None = None
) -> CreatedRun:
    """``FlowsClient.create_run`` on the default client."""
    return get_client().create_run(template_id, input_data, version=version)


def get_run(flow_run_id: str) -> RunInfo:
    """``FlowsClient.get_run`` on the default client."""
    return get_client().get_run(flow_run_id)


def update_run(flow_run_id: str, input: dict[str, Any]) -> UpdatedRun:
    """``FlowsClient.update_run`` on the default client."""
    return get_client().update_run(flow_run_id, input)


def list_templates() -> list[TemplateSummary]:
    """``FlowsClient.list_templates`` on the default client."""
    return get_client().list_templates()


def get_template(template_id: str, version: int | None = None) -> TemplateDocument:
    """``FlowsClient.get_template`` on the default client."""
    return get_client().get_template(template_id, version=version)


def check_credentials() -> None:
    get_client().check_credentials()


def publish_template(template_id: str, source: str) -> TemplateDocument:
    """``FlowsClient.publish_template`` on the default client."""
    return get_client().publish_template(template_id, source)
