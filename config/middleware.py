"""Session limits: 30 idle minutes and 12 hours at most (DESIGN.md, correctness rules), one
session per person where the site asks for it, no caching of what a signed-in person is shown,
and the time zone each person's pages are shown in.

Django's own expiry is one sliding age; we need two limits, and background polling (the queue's
live refresh, a claim's lease timer) must not count as activity, or an unattended screen would
stay signed in forever. Polling requests say so with the ``X-Flowdesk-Background`` header.

Also here: the request id every request gets (``request_id``, config/logs.py) and the probes and
metrics answered ahead of the rest of the stack (``probes``, docs/operations.md).
"""

import logging
import secrets
import time
import zoneinfo
from collections.abc import Callable
from typing import Any

import structlog
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.signals import user_logged_in
from django.http import HttpRequest, HttpResponse
from django.shortcuts import resolve_url
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django_htmx.http import HttpResponseClientRedirect

from config import logs

BACKGROUND_HEADER = "X-Flowdesk-Background"
# Recording activity at most once a minute keeps most requests from writing the session; a
# shorter idle limit records it more often, so that a person at work is never taken for idle.
ACTIVITY_GRANULARITY = 60
# The session's copy of its sign-in's key (``LatestSignIn``), for SESSION_ONE_PER_USER.
SIGN_IN_KEY = "sign_in_key"
SIGNED_IN_ELSEWHERE = "You were signed out because you signed in somewhere else."
REQUEST_ID_RESPONSE_HEADER = "X-Request-ID"
PROBE_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
_access_log = structlog.get_logger("flowdesk.request")


def _activity_granularity() -> int:
    return max(1, min(ACTIVITY_GRANULARITY, settings.SESSION_IDLE_SECONDS // 4))


def _session_start(*, request: HttpRequest, user: Any, **_: object) -> None:
    """A sign-in starts both clocks afresh (``login`` keeps the data of the same user's session)
    and becomes the person's latest sign-in. That is recorded whether or not
    SESSION_ONE_PER_USER is on, so that switching it on needs no sign-in first to apply."""
    from reviewqueue.models import LatestSignIn  # config is loaded before the apps

    now = int(time.time())
    request.session["signed_in_at"] = now
    request.session["active_at"] = now
    key = secrets.token_hex(16)
    LatestSignIn.objects.update_or_create(
        user_id=user.pk, defaults={"key": key, "signed_in_at": timezone.now()}
    )
    request.session[SIGN_IN_KEY] = key


user_logged_in.connect(_session_start, dispatch_uid="config.session_start")


def session_limits(get_response: Callable[[HttpRequest], HttpResponse]) -> Callable:
    def middleware(request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            now = int(time.time())
            session = request.session
            started = session.setdefault("signed_in_at", now)
            active = session.get("active_at", started)
            replaced = settings.SESSION_ONE_PER_USER and _replaced(request)
            if (
                replaced
                or now - started > settings.SESSION_MAX_SECONDS
                or now - active > settings.SESSION_IDLE_SECONDS
            ):
                logout(request)
                if replaced:
                    # Said on the sign-in page this request is sent to (a cookie: the session
                    # is gone), so that nobody takes it for a fault or an intruder.
                    messages.info(request, SIGNED_IN_ELSEWHERE)
                if getattr(request, "htmx", False):
                    return HttpResponseClientRedirect(resolve_url(settings.LOGIN_URL))
            elif BACKGROUND_HEADER not in request.headers and (
                now - active >= _activity_granularity() or "active_at" not in session
            ):
                session["active_at"] = now
        return get_response(request)

    return middleware


def _replaced(request: HttpRequest) -> bool:
    """Whether the person has signed in again since this session's sign-in (elsewhere, or here
    after another session was started). One indexed read, only with SESSION_ONE_PER_USER."""
    from reviewqueue.models import LatestSignIn

    user_id = request.user.pk
    if user_id is None:
        return False
    latest = LatestSignIn.objects.filter(user_id=user_id).values_list("key", flat=True).first()
    return latest is not None and latest != request.session.get(SIGN_IN_KEY)


def no_store_when_signed_in(get_response: Callable[[HttpRequest], HttpResponse]) -> Callable:
    """``Cache-Control: no-store`` on every response to a signed-in person: pages carry patients'
    data, and neither a shared proxy nor the browser's back button after sign-out may keep a
    copy. Signed in before the view (sign-out) or after it (sign-in) counts. Anonymous pages and
    static files (WhiteNoise answers those before this runs) stay cacheable."""

    def middleware(request: HttpRequest) -> HttpResponse:
        signed_in = request.user.is_authenticated
        response = get_response(request)
        if signed_in or request.user.is_authenticated:
            add_never_cache_headers(response)
        return response

    return middleware


def time_zone(get_response: Callable[[HttpRequest], HttpResponse]) -> Callable:
    """Every time on a page in the person's own zone (their preferences), else the site's
    ``TIME_ZONE``. One indexed read per signed-in request: a zone changed by an admin applies
    on the next page, not at the next sign-in."""

    def middleware(request: HttpRequest) -> HttpResponse:
        zone = _zone_of(request.user) if request.user.is_authenticated else None
        if zone is None:
            timezone.deactivate()
        else:
            timezone.activate(zone)
        try:
            return get_response(request)
        finally:
            # Threads serve the next request with whatever is active: never leak a zone to it.
            timezone.deactivate()

    return middleware


def _zone_of(user: Any) -> zoneinfo.ZoneInfo | None:
    from reviewqueue.models import StaffPreferences  # config is loaded before the apps

    name = (
        StaffPreferences.objects.filter(user_id=user.pk).values_list("time_zone", flat=True).first()
    )
    if not name:
        return None
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        # A zone the server's tz database no longer has: the site's zone, not an error page.
        return None


def request_id(get_response: Callable[[HttpRequest], HttpResponse]) -> Callable:
    """A request id for every request (config/logs.py): the proxy's when it looks like one,
    else a new one; bound to every log line written while serving the request, sent along with
    the tasks it queues, and returned as ``X-Request-ID``. With ``LOG_REQUESTS``, one line per
    request: method, route, status and duration. The route is the URL pattern, never the path:
    a path can carry a secret (a password-reset link's token) and the query string what
    someone typed."""

    def middleware(request: HttpRequest) -> HttpResponse:
        header = settings.REQUEST_ID_HEADER
        incoming = request.headers.get(header) if header else None
        rid = logs.sane_request_id(incoming) or logs.new_request_id()
        request.request_id = rid  # type: ignore[attr-defined]
        # A thread serves one request after another: never carry the last one's context over.
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=rid)
        started = time.monotonic()
        try:
            response = get_response(request)
            response[REQUEST_ID_RESPONSE_HEADER] = rid
            if settings.LOG_REQUESTS:
                _access_log.log(
                    logging.DEBUG if request.path_info in PROBE_PATHS else logging.INFO,
                    "request",
                    method=request.method,
                    route=_route(request),
                    status=response.status_code,
                    duration_ms=round((time.monotonic() - started) * 1000, 1),
                )
            return response
        finally:
            structlog.contextvars.clear_contextvars()

    return middleware


def _route(request: HttpRequest) -> str:
    """The URL pattern a request matched (``/items/<int:pk>/claim/``), ``/healthz`` and the
    like for the probes, or ``(unmatched)`` for a 404."""
    if request.path_info in PROBE_PATHS:
        return request.path_info
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "(unmatched)"
    return f"{request.path[: len(request.path) - len(request.path_info)]}/{match.route}"


def probes(get_response: Callable[[HttpRequest], HttpResponse]) -> Callable:
    """``/healthz``, ``/readyz`` and ``/metrics``, answered here rather than through the rest of
    the middleware: a load balancer or Prometheus asks by an address that ``ALLOWED_HOSTS`` does
    not list, a probe needs no session (``/healthz`` must not touch the database at all), and
    nothing after this adds anything they need. Each view checks its own method and access."""
    from config import views  # the views import the metrics, which connect signals

    answer = {"/healthz": views.healthz, "/readyz": views.readyz, "/metrics": views.metrics}

    def middleware(request: HttpRequest) -> HttpResponse:
        view = answer.get(request.path_info)
        if view is not None:
            return view(request)
        return get_response(request)

    return middleware
