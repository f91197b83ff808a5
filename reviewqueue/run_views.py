"""The Runs explorer: the list of mirrored Runs and one Run's page (docs/runs.md).

Every view loads Runs through ``run_selectors.runs_visible_to``, so a Run outside the person's
queues is a 404, exactly as one that does not exist. Both pages are PHI reads and are audited on
every request; neither polls, so no request header can decide whether a read is recorded.
"""

import uuid

from django.apps import apps
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from config.client_ip import client_ip
from flows_integration import client as flows_client
from flows_integration.models import FlowRun, FlowTemplate, RunStatus
from flows_integration.services import run_refresh
from reviewqueue import roles, run_selectors, searches, selectors, services


def _ip(request: HttpRequest) -> str | None:
    return client_ip(request)


def _run_for_user(request: HttpRequest, flow_run_id: uuid.UUID) -> FlowRun:
    """The Run, if the user may see it; 404 otherwise (guessing ids shows nothing)."""
    related = ["template", "version__template"]
    if apps.is_installed("intake"):
        # How it was started, when Flowdesk started it (by the relation's name: the review
        # queue never imports the intake app, which builds on it).
        related.append("started__client")
    return get_object_or_404(
        run_selectors.runs_visible_to(request.user).select_related(*related),
        flow_run_id=flow_run_id,
    )


@login_required
@require_http_methods(["GET", "POST"])
def run_list(request: HttpRequest) -> HttpResponse:
    """The Runs I may see, filtered from the URL and searched by a token in it (the term, an
    external id, stays out of URLs: ``searches``), newest first, paged. Open to everyone signed
    in: what it lists is limited to their queues (a person without any sees an empty list), so
    the top bar links to it without a query of its own on every page."""
    if request.method == "POST" or "q" in request.GET:
        return searches.search_redirect(request, to="reviewqueue:runs")
    may_triage = roles.can_triage(request.user)
    query, search_gone = searches.search_query(request)
    filters = run_selectors.RunFilters.from_query(query)
    page = run_selectors.runs_page(request.user, filters, may_triage=may_triage)
    services.audit_read(
        action="runs.viewed",
        actor=request.user,
        ip=_ip(request),
        runs=[str(run.flow_run_id) for run in page.runs],
    )
    context = {
        "filters": filters,
        "search_gone": search_gone,
        "page": page,
        "rows": [(run, page.step(run)) for run in page.runs],
        "statuses": RunStatus.choices,
        "templates": FlowTemplate.objects.values_list("template_id", "name"),
        "may_triage": may_triage,
        "query": searches.query_without(request.GET, "page"),
    }
    return render(request, "reviewqueue/runs.html", context)


@login_required
@require_GET
def run_detail(request: HttpRequest, flow_run_id: uuid.UUID) -> HttpResponse:
    """One Run: its timeline, input, output and errors for people, items, submissions and the
    webhook events received."""
    run = _run_for_user(request, flow_run_id)
    services.audit_read(
        action="run.viewed", actor=request.user, flow_run_id=run.flow_run_id, ip=_ip(request)
    )
    document = run.version.document if run.version is not None else {}
    context = {
        "run": run,
        "story": run_selectors.run_story(request.user, run),
        "sections": selectors.readable_sections(document.get("input", {}), run.input_data),
        "earlier_steps": selectors.earlier_steps(document, run.state_results),
        "output_rows": selectors.output_rows(document, run.output),
        "run_errors": selectors.run_errors(document, run.errors),
        "step": selectors.state_title(document, run.state_id) if run.state_id else "",
        # A reverse one-to-one with no row raises a subclass of AttributeError: None here.
        "started": getattr(run, "started", None),
        "is_supervisor": roles.is_supervisor(request.user),
    }
    return render(request, "reviewqueue/run.html", context)


@login_required
@require_POST
def run_resync(request: HttpRequest, flow_run_id: uuid.UUID) -> HttpResponse:
    """Get Run now and update the mirror; the page then says what changed, or why nothing
    could be fetched."""
    run = _run_for_user(request, flow_run_id)
    before = run_selectors.run_snapshot(run)
    try:
        refreshed = run_refresh(run.flow_run_id)
    except flows_client.FlowsError as exc:
        services.audit_record(
            action="run.resynced",
            actor=request.user,
            flow_run_id=run.flow_run_id,
            ip=_ip(request),
            outcome="failed",
            status=exc.status,
        )
        messages.error(request, _resync_failure(exc, supervisor=roles.is_supervisor(request.user)))
        return redirect("reviewqueue:run", flow_run_id=run.flow_run_id)
    changes = run_selectors.run_changes(before, refreshed.run) if refreshed.changed else []
    services.audit_record(
        action="run.resynced",
        actor=request.user,
        flow_run_id=run.flow_run_id,
        ip=_ip(request),
        outcome="changed" if changes else "unchanged",
        fields=[name for name in before if before[name] != getattr(refreshed.run, name)],
    )
    if changes:
        messages.success(request, "Re-synced from Flows. Changed: " + "; ".join(changes) + ".")
    else:
        messages.info(request, "Re-synced from Flows: nothing has changed.")
    return redirect("reviewqueue:run", flow_run_id=run.flow_run_id)


def _resync_failure(exc: flows_client.FlowsError, *, supervisor: bool) -> str:
    if exc.status == 404:
        text = "Flows does not know this Run, so nothing was re-synced."
    elif exc.retryable:
        text = (
            "Flows is not answering right now, so this Run was not re-synced. The page shows "
            "what Flowdesk last saw; try again in a minute."
        )
    else:
        text = "Flows refused to send this Run, so nothing was re-synced."
    # str(FlowsError) leaves out the server's message, which may echo input values.
    return f"{text} (Technical detail: {exc})" if supervisor else text
