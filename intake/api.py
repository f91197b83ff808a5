"""The intake API: other systems (an EHR integration, a scheduler) start Runs through Flowdesk,
so that each Run is known with its template from the start and its pauses open as items.

JSON in and out, a bearer token per system (``ApiClient``), no session and so no CSRF. Errors
look like Sohar's: ``{"error": ..., "param": ..., "message": ...}``. The document is
``openapi.yaml`` beside this module, served at ``/api/v1/openapi.json``.
"""

import json
from pathlib import Path
from typing import Any

import yaml
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from config.client_ip import client_ip
from flows_integration import client as flows_client
from intake import services
from intake.models import ApiClient, Source, StartedRun

OPENAPI_PATH = Path(__file__).resolve().parent / "openapi.yaml"
MAX_EXTERNAL_ID = 200


def _error(status: int, error: str, message: str, param: str | None = None, **extra: Any):
    body: dict[str, Any] = {"error": error, "message": message}
    if param is not None:
        body["param"] = param
    response = JsonResponse(body | extra, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="flowdesk-intake"'
    return response


def _client_of(request: HttpRequest) -> ApiClient | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return services.client_authenticate(token.strip())


def _run_body(started: StartedRun) -> dict[str, Any]:
    run = started.flow_run
    assert run is not None
    return {
        "flowRunId": str(run.flow_run_id),
        "status": run.status,
        "templateId": started.template_id,
        "version": started.version,
        "externalId": started.external_id or None,
    }


def _request_fields(body: Any) -> tuple[str, int | None, Any, str]:
    """templateId, version, inputData and externalId of a request body; StartRefused naming the
    field otherwise."""
    if not isinstance(body, dict):
        raise services.StartRefused([("body", "The body must be a JSON object.")])
    template_id = body.get("templateId")
    if not isinstance(template_id, str) or not template_id:
        raise services.StartRefused([("templateId", "templateId must be a non-empty string.")])
    version = body.get("version")
    if version is not None and (
        isinstance(version, bool) or not isinstance(version, int) or version < 1
    ):
        raise services.StartRefused([("version", "version must be a positive integer.")])
    if "inputData" not in body:
        raise services.StartRefused([("inputData", "inputData is required.")])
    external_id = body.get("externalId")
    if external_id is None:
        external_id = ""
    elif not isinstance(external_id, str) or not 0 < len(external_id) <= MAX_EXTERNAL_ID:
        raise services.StartRefused(
            [("externalId", f"externalId must be a string of 1 to {MAX_EXTERNAL_ID} characters.")]
        )
    return template_id, version, body["inputData"], external_id


@csrf_exempt
@require_POST
def runs_create(request: HttpRequest) -> HttpResponse:
    """Start a Run: 201 with the new Run, 200 with the Run a repeat of ``externalId`` started."""
    api_client = _client_of(request)
    if api_client is None:
        return _error(401, "authentication_error", "A valid API token is required.")
    try:
        body = json.loads(request.body)
    except ValueError:
        return _error(400, "invalid_request_error", "The body is not JSON.", "body")
    try:
        template_id, version, input_data, external_id = _request_fields(body)
        result = services.run_start(
            template_id=template_id,
            version=version,
            input_data=input_data,
            source=Source.API,
            client=api_client,
            external_id=external_id,
            ip=client_ip(request),
        )
    except services.StartRefused as exc:
        errors = [{"param": param, "message": message} for param, message in exc.errors]
        status, error = (
            (409, "idempotency_error") if exc.conflict else (400, "invalid_request_error")
        )
        return _error(status, error, exc.message, exc.param, errors=errors)
    except services.StartPending as exc:
        return _pending(exc)
    except flows_client.FlowsError as exc:
        return _flows_failed(exc)
    return JsonResponse(_run_body(result.started), status=201 if result.created else 200)


def _pending(exc: services.StartPending) -> HttpResponse:
    if exc.outcome_unknown:
        return _error(
            409,
            "outcome_unknown",
            "A request with this externalId was sent to Flows, which never confirmed it: the "
            "Run may exist. Flowdesk will not start another with this externalId.",
            "externalId",
        )
    response = _error(
        409,
        "in_progress",
        "A request with this externalId is still starting its Run.",
        "externalId",
    )
    response["Retry-After"] = "1"
    return response


def _flows_failed(exc: flows_client.FlowsError) -> HttpResponse:
    """What Flows said, in our words. Its message may echo input values, so it is not passed on."""
    if exc.outcome_unknown:
        return _error(
            502,
            "outcome_unknown",
            "Flows did not confirm the start: the Run may exist. Flowdesk will not start another "
            "with the same externalId; without one, check before you repeat the request.",
        )
    if exc.retryable:
        response = _error(
            503,
            "flows_unavailable",
            "The Flows service is not answering. Nothing was started; try again later.",
        )
        response["Retry-After"] = str(int(exc.retry_after or 30))
        return response
    if exc.status == 400:
        return _error(400, "invalid_request_error", "Flows refused the input.", exc.param)
    if exc.status == 404:
        return _error(
            400, "invalid_request_error", "The Flows service has no such template.", "templateId"
        )
    return _error(502, "flows_error", f"Flows refused the start (status {exc.status}).")


@require_GET
def openapi(request: HttpRequest) -> HttpResponse:
    document = yaml.safe_load(OPENAPI_PATH.read_text())
    document["servers"] = [{"url": request.build_absolute_uri("/")}]
    return JsonResponse(document)
