"""Probes and metrics (docs/operations.md), and the benchmarks' trivial view.

``config.middleware.probes`` answers ``/healthz``, ``/readyz`` and ``/metrics`` before host
validation, sessions and sign-in; the URLconf lists them too, for ``reverse()``.
"""

from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET

from config import health, scrape
from config import metrics as prom
from config.client_ip import from_this_machine


@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness, for the container's HEALTHCHECK and a liveness probe: the process answers.
    Nothing else: a database or Flows outage must not get healthy processes restarted."""
    return JsonResponse({"status": "ok"})


@require_GET
def readyz(request: HttpRequest) -> HttpResponse:
    """Readiness: the database answers, its migrations are applied, the broker and the Flows
    API are reachable (config/health.py); 503 when one in ``READYZ_REQUIRED`` is not. What each
    check found only to this machine or a scraper with the metrics token: the probe is public,
    and "Flows answered 403" is not for everyone."""
    ready, checks = health.readiness()
    body: dict[str, object] = {"status": "ready" if ready else "not ready"}
    if _asked_here(request) or prom.authorized(request.headers.get("Authorization"), local=False):
        body["checks"] = checks
    return JsonResponse(body, status=200 if ready else 503, headers={"Cache-Control": "no-store"})


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus's scrape: ``Authorization: Bearer <METRICS_TOKEN>``; without a token set, 404
    (development: answered to this machine only)."""
    allowed = prom.authorized(request.headers.get("Authorization"), local=_asked_here(request))
    if allowed is None:
        return HttpResponse("Not found\n", status=404, content_type="text/plain")
    if not allowed:
        response = HttpResponse("Unauthorized\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = "Bearer"
        return response
    return HttpResponse(
        scrape.exposition(),
        content_type=scrape.CONTENT_TYPE_LATEST,
        headers={"Cache-Control": "no-store"},
    )


def _asked_here(request: HttpRequest) -> bool:
    """From this machine's own connection, by a host name this site answers to: the probes skip
    host validation, and a page on another site could otherwise have a browser here ask
    (DNS rebinding) for what is answered without a token."""
    try:
        request.get_host()
    except DisallowedHost:
        return False
    return from_this_machine(request)


@require_GET
def ping(request: HttpRequest) -> HttpResponse:
    """The trivial view that benchmarks measure everything else against."""
    return HttpResponse("pong", content_type="text/plain")
