"""Probes and metrics (docs/operations.md), and the benchmarks' trivial view.

``config.middleware.probes`` answers ``/healthz``, ``/readyz`` and ``/metrics`` before host
validation, sessions and sign-in; the URLconf lists them too, for ``reverse()``.
"""

import ipaddress

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET

from config import health, scrape
from config import metrics as prom
from config.client_ip import client_ip


@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness, for the container's HEALTHCHECK and a liveness probe: the process answers.
    Nothing else: a database or Flows outage must not get healthy processes restarted."""
    return JsonResponse({"status": "ok"})


@require_GET
def readyz(request: HttpRequest) -> HttpResponse:
    """Readiness: the database answers, its migrations are applied, the broker and the Flows
    API are reachable (config/health.py); 503 when one in ``READYZ_REQUIRED`` is not."""
    ready, checks = health.readiness()
    return JsonResponse(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status=200 if ready else 503,
        headers={"Cache-Control": "no-store"},
    )


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus's scrape: ``Authorization: Bearer <METRICS_TOKEN>``; without a token set, 404
    (development: answered to this machine only)."""
    allowed = prom.authorized(request.headers.get("Authorization"), local=_local(request))
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


def _local(request: HttpRequest) -> bool:
    address = client_ip(request)
    try:
        return address is not None and ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


@require_GET
def ping(request: HttpRequest) -> HttpResponse:
    """The trivial view that benchmarks measure everything else against."""
    return HttpResponse("pong", content_type="text/plain")
