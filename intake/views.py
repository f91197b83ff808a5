"""The Start run page: choose a template and version, fill the form generated from its ``input``
schema (the same schema-form engine as the callback states), start the Run, then follow it.

These views live with the intake API rather than in ``reviewqueue`` because every way of
starting a Run shares ``intake.services.run_start``, and ``intake`` depends on the review queue
(forms, audit), never the other way round.
"""

import uuid
from typing import Any

from django.contrib.auth.decorators import login_required, permission_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods
from django_htmx.http import HttpResponseClientRedirect

from config.client_ip import client_ip
from flows_integration import client as flows_client
from flows_integration.models import TERMINAL_STATUSES, FlowRun, TemplateVersion
from intake import services
from intake.models import Source, StartedRun
from reviewqueue import roles, selectors
from reviewqueue.schema_forms import START, FormSpec, SchemaForm, build_form
from reviewqueue.services import audit_read

START_RUN = "intake.start_run"
VERSION = "~version"
KEY = "~key"

_UNAVAILABLE = (
    "The Flows service is not answering right now, so the Run was not started. Your input is "
    "kept: try again in a moment."
)
_UNKNOWN = (
    "The Flows service did not confirm the start: the Run may have started. Look for it in the "
    "queue before you start it again."
)
_IN_PROGRESS = "This Run is still being started. Wait a moment, then look for it in the queue."


def _ip(request: HttpRequest) -> str | None:
    return client_ip(request)


def _htmx(request: HttpRequest) -> bool:
    return bool(getattr(request, "htmx", False))


def _version_for(template_id: str, number: str | None) -> TemplateVersion:
    """The stored version asked for (latest by default); 404 for anything unknown."""
    try:
        wanted = int(number) if number else None
        return services.version_resolve(template_id=template_id, number=wanted)
    except (ValueError, services.StartRefused):
        raise Http404("No such template version.") from None


@login_required
@permission_required(START_RUN, raise_exception=True)
@require_GET
def start_choose(request: HttpRequest) -> HttpResponse:
    """Every stored template, with its latest version first."""
    templates: dict[str, list[TemplateVersion]] = {}
    for version in services.startable_versions():
        templates.setdefault(version.template.template_id, []).append(version)
    return render(request, "intake/start_choose.html", {"templates": templates})


@login_required
@permission_required(START_RUN, raise_exception=True)
@require_http_methods(["GET", "POST"])
def start_form(request: HttpRequest, template_id: str) -> HttpResponse:
    """The Start run form of one version; a POST validates it (the schema has the final word)
    and starts the Run once per form (a double click starts one)."""
    source = request.POST if request.method == "POST" else request.GET
    version = _version_for(template_id, source.get(VERSION) or request.GET.get("version"))
    spec = FormSpec.for_state(version.document, START)
    assert spec is not None  # START always has a form
    partial_url = reverse("reviewqueue:form_partial", args=[template_id, version.number, START])
    signer = roles.display_name(request.user)  # who starts the Run signs its x-signature fields
    if request.method == "GET":
        form, _ = build_form(spec, None, partial_url=partial_url, signer=signer)
        return _form_page(request, version, form, key=uuid.uuid4())
    key = _key(request.POST.get(KEY, ""))
    form, acted = build_form(spec, request.POST, partial_url=partial_url, signer=signer)
    if acted:  # a row added or removed without JavaScript
        form.suppress_errors()
        return _form_page(request, version, form, key=key)
    if not form.is_valid():
        return _form_page(request, version, form, key=key, status=422)
    try:
        result = services.run_start(
            template_id=template_id,
            version=version.number,
            input_data=form.answer,
            source=Source.PAGE,
            started_by=request.user,
            form_key=key,
            ip=_ip(request),
        )
    except services.StartRefused as exc:
        for param, message in exc.errors:
            form.add_server_error(param, message)
        return _form_page(request, version, form, key=key, status=422)
    except services.StartPending as exc:
        message = _UNKNOWN if exc.outcome_unknown else _IN_PROGRESS
        return _form_page(request, version, form, key=uuid.uuid4(), error=message, status=409)
    except flows_client.FlowsError as exc:
        return _flows_failed(request, version, form, key, exc)
    assert result.started.flow_run is not None
    target = reverse("intake:run_started", args=[result.started.flow_run.flow_run_id])
    return HttpResponseClientRedirect(target) if _htmx(request) else redirect(target)


def _flows_failed(
    request: HttpRequest,
    version: TemplateVersion,
    form: SchemaForm,
    key: uuid.UUID,
    exc: flows_client.FlowsError,
) -> HttpResponse:
    """Flows refused or did not answer: the form as typed, with what happened in plain words."""
    if exc.outcome_unknown:
        # The Run may exist: a new key, so that starting again is a deliberate second Run.
        return _form_page(request, version, form, key=uuid.uuid4(), error=_UNKNOWN, status=502)
    if exc.retryable:
        return _form_page(request, version, form, key=key, error=_UNAVAILABLE, status=503)
    if exc.status == 400 and exc.param:
        form.add_server_error(exc.param, "The Flows service refused this value.")
        return _form_page(request, version, form, key=key, status=422)
    message = f"The Flows service refused to start this Run (status {exc.status})."
    return _form_page(request, version, form, key=key, error=message, status=502)


def _key(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        return uuid.uuid4()


def _form_page(
    request: HttpRequest,
    version: TemplateVersion,
    form: SchemaForm,
    *,
    key: uuid.UUID,
    error: str = "",
    status: int = 200,
) -> HttpResponse:
    versions = version.template.versions.order_by("-number")
    context = {
        "version": version,
        "versions": versions,
        "latest": versions.first(),
        "spec": form.spec,
        "form": form,
        "key": key,
        "error": error,
    }
    return render(request, "intake/start_form.html", context, status=status)


# --- The Run, once started -------------------------------------------------------------------


@login_required
@permission_required(START_RUN, raise_exception=True)
@require_GET
def run_started(request: HttpRequest, flow_run_id: uuid.UUID) -> HttpResponse:
    """A Run started through Flowdesk, until it pauses or ends. When it pauses in a queue I may
    see, its item opens instead; htmx polls this page in the background until then."""
    started = get_object_or_404(
        StartedRun.objects.select_related("flow_run", "started_by", "client"),
        flow_run__flow_run_id=flow_run_id,
    )
    run = started.flow_run
    assert run is not None
    item = selectors.items_visible_to(request.user).filter(run=run).order_by("-pk").first()
    if item is not None:
        target = reverse("reviewqueue:item", args=[item.pk])
        return HttpResponseClientRedirect(target) if _htmx(request) else redirect(target)
    audit_read(
        action="run.status_viewed", actor=request.user, flow_run_id=run.flow_run_id, ip=_ip(request)
    )
    context = _run_context(started, run)
    if _htmx(request):
        return render(request, "intake/start_run.html#run-status", context)
    return render(request, "intake/start_run.html", context)


def _run_context(started: StartedRun, run: FlowRun) -> dict[str, Any]:
    waiting_elsewhere = run.review_items.order_by("-pk").first()
    return {
        "started": started,
        "run": run,
        "settled": run.status in TERMINAL_STATUSES or waiting_elsewhere is not None,
        "waiting_queue": waiting_elsewhere.queue if waiting_elsewhere is not None else None,
    }
