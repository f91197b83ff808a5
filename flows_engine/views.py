"""The Flows API over HTTP, shaped exactly as flows-api.md describes Sohar's.

Plain function views: the API is small, and hand-written views keep every status code and error
body under our control. The OpenAPI document beside this module describes the same surface.
"""

import re
import uuid
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import yaml
from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

import flowspec
from flows_engine import services
from flows_engine.errors import (
    BodyTooLarge,
    EngineError,
    InvalidRequest,
    NotFound,
    TemplateRefused,
    TooManyAttempts,
    Unauthorized,
)
from flows_engine.models import ApiClient, Run, Template, TemplateVersion
from flowspec.numbers import InexactNumber, TooDeep, exact_loads

OPENAPI_PATH = Path(__file__).resolve().parent / "openapi.yaml"

View = Callable[..., HttpResponse]


def _error(exc: EngineError) -> JsonResponse:
    return JsonResponse(exc.as_body(), status=exc.status)


def api_view(view: View) -> View:
    """Bearer authentication and Sohar's error objects for every API view.

    Service errors become their error bodies, so views only describe the happy path.
    """

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            client = services.client_for_token(request.headers.get("Authorization"))
            return view(request, client, *args, **kwargs)
        except EngineError as exc:
            return _error(exc)

    return csrf_exempt(wrapper)


# How deep a request body's objects and lists may nest (ours: Sohar documents no limit). Run
# input is a few levels deep; a body nested thousands deep would exhaust the stack of the input
# validator, of Flowdesk's pages that show it, or of the parser itself.
JSON_DEPTH_MAX = 32


def _json_body(request: HttpRequest) -> dict:
    # Numbers are read exactly as sent (flowspec.numbers): one a float would round, NaN or
    # Infinity is refused here rather than stored as a different number (or as invalid JSON).
    try:
        raw = request.body
    except RequestDataTooBig:
        # Django's DATA_UPLOAD_MAX_MEMORY_SIZE, as Sohar's error object rather than an HTML 400.
        raise BodyTooLarge(
            f"the body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE:,} bytes", param="body"
        ) from None
    try:
        body = exact_loads(raw or b"{}", max_depth=JSON_DEPTH_MAX)
    except (InexactNumber, TooDeep) as exc:
        raise InvalidRequest(str(exc), param="body") from None
    except (ValueError, UnicodeDecodeError):
        # ValueError covers a JSONDecodeError, NaN and an integer of more than 4,300 digits.
        raise InvalidRequest("the body is not valid JSON", param="body") from None
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object", param="body")
    # PostgreSQL stores no NUL character in text or jsonb: refused here as bad input, it would
    # otherwise be a 500 from the database (schemathesis found one in a client_id).
    # json.loads refuses a raw NUL, so one can only come escaped: look only then.
    if b"\\u0000" in raw and _has(body, "\x00"):
        raise InvalidRequest("the body must not contain NUL characters", param="body")
    # Nor a lone UTF-16 surrogate (`"\\ud800"` without its pair), which jsonb refuses too; a
    # pair is read as the one character it encodes, so what remains was sent alone.
    if b"\\u" in raw and _has(body, _SURROGATE):
        raise InvalidRequest("the body must not contain unpaired surrogates", param="body")
    return body


_SURROGATE = re.compile("[\ud800-\udfff]")


def _has(value: Any, what: "str | re.Pattern[str]") -> bool:
    """Whether a string in ``value`` (keys too) contains ``what`` (text, or a pattern)."""
    if isinstance(value, str):
        return what in value if isinstance(what, str) else what.search(value) is not None
    if isinstance(value, dict):
        return any(_has(key, what) or _has(item, what) for key, item in value.items())
    if isinstance(value, list):
        return any(_has(item, what) for item in value)
    return False


def _version_param(raw: Any) -> int | None:
    if raw is None or raw == "":
        return None
    if isinstance(raw, bool):
        raise InvalidRequest("version must be a positive whole number", param="version")
    try:
        number = int(raw)
    except (TypeError, ValueError):
        raise InvalidRequest("version must be a positive whole number", param="version") from None
    if number < 1 or (isinstance(raw, float) and raw != number):
        raise InvalidRequest("version must be a positive whole number", param="version")
    return number


def _run_body(run: Run) -> dict:
    body: dict[str, Any] = {
        "flowRunId": str(run.pk),
        "status": run.status,
        "output": run.output,
    }
    if run.errors:
        body["errors"] = run.errors
    # Our extensions (flows-api.md "(ours)"): a client must not depend on them with Sohar.
    body.update(
        templateId=run.version.template.template_id,
        version=run.version.number,
        stateId=run.state_id or None,
        createdAt=run.created_at.isoformat(),
        updatedAt=run.updated_at.isoformat(),
        # What the Run knows so far, so a reviewer reads its context: the paths `$input` and
        # `$states` of the template language read exactly these.
        inputData=run.input_data,
        states=run.state_outputs,
    )
    return body


def _version_body(version: TemplateVersion, *, full: bool) -> dict:
    spec = version.spec
    body: dict[str, Any] = {
        "templateId": version.template.template_id,
        "name": spec.name,
        "description": spec.description,
        "version": version.number,
        "publishedAt": version.published_at.isoformat(),
    }
    if full:
        body["document"] = version.document
        body["callbackStates"] = [
            {"stateId": state.id, "title": state.title, "input": state.input_schema}
            for state in spec.callback_states()
        ]
    return body


def _too_many_attempts() -> JsonResponse:
    response = _error(TooManyAttempts("Too many failed attempts; try again later"))
    response["Retry-After"] = str(round(settings.AXES_COOLOFF_TIME.total_seconds()))
    return response


@csrf_exempt
@require_POST
def token(request: HttpRequest) -> HttpResponse:
    try:
        body = _json_body(request)
        # Wrong secrets are counted by django-axes, per client id and per address, as wrong
        # passwords are: the client id is the "username" of a token call.
        credentials = {"username": f"oauth:{str(body.get('client_id'))[:100]}"}
        if not AxesProxyHandler.is_allowed(request, credentials):
            return _too_many_attempts()
        try:
            access_token, expires_in = services.token_issue(
                client_id=body.get("client_id"), client_secret=body.get("client_secret")
            )
        except Unauthorized:
            user_login_failed.send(sender=__name__, credentials=credentials, request=request)
            if getattr(request, "axes_locked_out", False):
                # This failure started the lock: answer as an API does, not with axes' page.
                request.axes_locked_out = False  # type: ignore[attr-defined]
                return _too_many_attempts()
            raise
    except EngineError as exc:
        return _error(exc)
    return JsonResponse(
        {"access_token": access_token, "token_type": "Bearer", "expires_in": expires_in}
    )


@require_GET
@api_view
def template_list(request: HttpRequest, client: ApiClient) -> HttpResponse:
    templates = []
    for template in Template.objects.prefetch_related("versions"):
        versions = sorted(template.versions.all(), key=lambda v: v.number)
        if versions:
            templates.append(_version_body(versions[-1], full=False))
    return JsonResponse({"data": templates})


@require_GET
@api_view
def template_detail(request: HttpRequest, client: ApiClient, template_id: str) -> HttpResponse:
    number = _version_param(request.GET.get("version"))
    version = services.version_get(template_id=template_id, number=number)
    return JsonResponse(_version_body(version, full=True))


@require_POST
@api_view
def version_publish(request: HttpRequest, client: ApiClient, template_id: str) -> HttpResponse:
    """Publish a new version (ours): validated exactly as the admin's publish page validates."""
    if len(template_id) > services.TEMPLATE_ID_MAX:
        raise InvalidRequest(
            f"templateId is longer than {services.TEMPLATE_ID_MAX} characters", param="templateId"
        )
    body = _json_body(request)
    source = body.get("source")
    if not isinstance(source, str) or not source.strip():
        raise InvalidRequest(
            "source is required: the template document as YAML or JSON text", param="source"
        )
    try:
        version = services.version_publish(template_id=template_id, source=source)
    except flowspec.TemplateInvalid as exc:
        raise TemplateRefused([(error.location, error.message) for error in exc.errors]) from None
    except RecursionError:
        # Brackets nested thousands deep exhaust the YAML parser's stack: bad input, not a 500.
        raise TemplateRefused([("document", "nested too deeply to read")]) from None
    return JsonResponse(_version_body(version, full=True), status=201)


@require_POST
@api_view
def run_create(request: HttpRequest, client: ApiClient, template_id: str) -> HttpResponse:
    body = _json_body(request)
    if "inputData" not in body:
        raise InvalidRequest("inputData is required", param="inputData")
    version = _version_param(body.get("version", request.GET.get("version")))
    run = services.run_create(
        client=client, template_id=template_id, input_data=body["inputData"], version=version
    )
    return JsonResponse({"flowRunId": str(run.pk)}, status=201)


@require_http_methods(["GET", "PUT"])
@api_view
def run_detail(request: HttpRequest, client: ApiClient, run_id: str) -> HttpResponse:
    try:
        run_id = str(uuid.UUID(run_id))
    except ValueError:
        raise NotFound("no such flow run", param="flowRunId") from None
    if request.method == "PUT":
        body = _json_body(request)
        run = services.run_update(client=client, run_id=run_id, input=body.get("input"))
        return JsonResponse({"flowRunId": str(run.pk), "status": run.status})
    run = services.run_get(client=client, run_id=run_id)
    return JsonResponse(_run_body(run))


@require_GET
def openapi(request: HttpRequest) -> HttpResponse:
    document = yaml.safe_load(OPENAPI_PATH.read_text())
    document["servers"] = [{"url": request.build_absolute_uri("/flows-api")}]
    return JsonResponse(document)
