"""Pages of the review queue: function views, htmx partials, plain forms without JavaScript.

Every view that takes an item id loads it through ``_item_for_user``, so an item outside the
user's queues is a 404, never a 403 that confirms it exists. A POST without htmx redirects; with
htmx it re-renders the fragment it targets from fresh data.
"""

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect, HttpResponseClientRefresh, retarget

from config.client_ip import client_ip
from config.middleware import BACKGROUND_HEADER
from flows_integration.models import TemplateVersion
from reviewqueue import present, roles, searches, selectors, services
from reviewqueue.forms import DeclineForm, MoveForm, OwnPreferencesForm, PostponeForm
from reviewqueue.models import (
    WORKABLE_STATUSES,
    Draft,
    ItemStatus,
    ReasonKind,
    ReviewItem,
    StaffPreferences,
    SubmissionStatus,
)
from reviewqueue.schema_forms import (
    FIELDS,
    PART,
    FormSpec,
    SchemaForm,
    build_form,
    reading_of,
    signed_data,
)

# --- Helpers ---------------------------------------------------------------------------------


def _ip(request: HttpRequest) -> str | None:
    return client_ip(request)


def _htmx(request: HttpRequest) -> bool:
    return bool(getattr(request, "htmx", False))


def _item_for_user(request: HttpRequest, pk: int) -> ReviewItem:
    """The item, if it is in one of the user's queues; 404 otherwise (guessing ids shows
    nothing)."""
    return get_object_or_404(
        selectors.items_visible_to(request.user).select_related(
            "run", "queue", "version__template", "claimed_by"
        ),
        pk=pk,
    )


# --- The queue -------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def queue(request: HttpRequest) -> HttpResponse:
    """The items of my queues, filtered, searched, sorted and paged; htmx polls the rows. The
    filter form is posted, so that the search term stays out of the URL (``searches``)."""
    if request.method == "POST" or "q" in request.GET:
        return searches.search_redirect(request, to="reviewqueue:queue")
    context = _queue_context(request)
    if _htmx(request):
        return render(request, "reviewqueue/queue.html#queue-rows", context)
    return render(request, "reviewqueue/queue.html", context)


def _queue_context(request: HttpRequest) -> dict[str, Any]:
    """The queue page (or, for htmx, its rows) for the filters in the request's query string:
    the page's own, or a bulk move's, which is posted to a URL that carries them."""
    supervisor = roles.is_supervisor(request.user)
    query, search_gone = searches.search_query(request)
    filters = selectors.QueueFilters.from_query(query, supervisor=supervisor)
    since = _moment(request.GET.get("since", "")) or timezone.now()
    page = selectors.queue_page(request.user, filters, since=since)
    # The polled rows need their own steps' titles; the whole page's filters list every step.
    versions = {item.version_id for item in page.items} if _htmx(request) else None
    steps = selectors.queue_steps(version_ids=versions)
    services.audit_read(
        action="queue.viewed", actor=request.user, ip=_ip(request), items=[i.pk for i in page.items]
    )
    context = {
        "filters": filters,
        "search_gone": search_gone,
        "page": page,
        "since": since,
        "queues": selectors.queues_visible_to(request.user),
        "steps": steps,
        "statuses": selectors.STATUS_FILTERS,
        "sorts": selectors.SORTS,
        "assignees": selectors.ASSIGNEES,
        "query": searches.query_without(request.GET, "page", "since"),
        "refresh_seconds": settings.REVIEW_REFRESH_SECONDS,
    }
    if supervisor:
        context |= _move_context(request, filters, page)
    if _htmx(request):
        return context
    context["dashboard_selection"] = selectors.dashboard_selection(filters)
    if roles.can_triage(request.user):
        context["triage_count"] = selectors.runs_in_triage().count()
    if roles.is_supervisor(request.user):
        context["signin_locks"] = len(selectors.signin_locks())
    return context


def _moment(text: str) -> datetime | None:
    try:
        return parse_datetime(text)
    except ValueError:  # well formed but not a real date: 2024-02-30
        return None


@login_required
@require_POST
def get_next(request: HttpRequest) -> HttpResponse:
    """Claim the most urgent item I may take and open it."""
    try:
        item = services.item_get_next(user=request.user, ip=_ip(request))
    except services.GetNextPaused as exc:
        messages.warning(request, str(exc))
        target = reverse("reviewqueue:queue")
        return HttpResponseClientRedirect(target) if _htmx(request) else redirect(target)
    if item is None:
        messages.info(request, "Nothing left to take in your queues.")
        target = reverse("reviewqueue:queue")
    else:
        target = reverse("reviewqueue:item", args=[item.pk])
    return HttpResponseClientRedirect(target) if _htmx(request) else redirect(target)


# --- One item --------------------------------------------------------------------------------


@login_required
@require_GET
def item_detail(request: HttpRequest, pk: int) -> HttpResponse:
    item = _item_for_user(request, pk)
    services.audit_read(action="item.viewed", actor=request.user, item=item, ip=_ip(request))
    polled = BACKGROUND_HEADER in request.headers and _htmx(request)
    if polled and item.status not in (ItemStatus.SENDING, ItemStatus.DELIVERED):
        # The panel polled while the answer was on its way; now that it has settled, the Run's
        # context and timeline beside the panel are stale too: reload the page once.
        return HttpResponseClientRefresh()
    context = _item_context(request, item)
    if _htmx(request):
        return render(request, "reviewqueue/item.html#item-panel", context)
    return render(request, "reviewqueue/item.html", context)


def _item_context(
    request: HttpRequest,
    item: ReviewItem,
    *,
    form: SchemaForm | None = None,
    error: str = "",
) -> dict[str, Any]:
    spec = FormSpec.for_state(item.version.document, item.state_id)
    if spec is None:
        raise Http404("The item's state has no form.")
    mine = item.lease_held_by(request.user)
    # My claim ran out but the sweep has not returned the item yet: never "someone is working".
    claim_ended = (
        item.status == ItemStatus.CLAIMED and item.claimed_by_id == request.user.pk and not mine
    )
    draft = services.draft_for(item=item, user=request.user)
    if form is None and mine:
        form = _saved_form(item, spec, draft, signer=_signer(request))
    kept = (
        _draft_form(item, spec, draft, signer=_signer(request)).typed_values()
        if draft and not mine
        else []
    )
    supervisor = roles.is_supervisor(request.user)
    submission = item.submissions.first()
    document = item.version.document
    # Said before anyone presses Claim: the route keeps this person from the item.
    separation = (
        selectors.separation_reason(item, request.user) if item.status in WORKABLE_STATUSES else ""
    )
    context = {
        "item": item,
        "run": item.run,
        "spec": spec,
        "form": form,
        "mine": mine,
        "claim_ended": claim_ended,
        "separation": separation,
        "error": error,
        "is_supervisor": supervisor,
        "submission": submission,
        "sent_rows": (
            selectors.answer_rows(document, item.state_id, submission.input) if submission else []
        ),
        "draft": draft,
        "kept_input": kept,
        "reassign_to": _colleagues(item) if supervisor else [],
        "now": timezone.now(),
    }
    if not _htmx(request):
        # The side column: only a whole page shows it, never the panel that htmx swaps.
        context |= {
            "sections": selectors.readable_sections(document.get("input", {}), item.run.input_data),
            "earlier_steps": selectors.earlier_steps(document, item.run.state_results),
            "output_rows": selectors.output_rows(document, item.run.output),
            "run_errors": selectors.run_errors(document, item.run.errors),
            "timeline": selectors.timeline(item),
            "notes": item.notes.select_related("author"),
        }
    context |= _reasons_context(request, item, mine=mine, supervisor=supervisor)
    return context


def _form_url(item: ReviewItem) -> str:
    return reverse("reviewqueue:item_form", args=[item.pk])


def _run_context(item: ReviewItem) -> dict[str, Any]:
    """What the form's context and prefill paths read: `$input` and `$states`."""
    return {"input": item.run.input_data, "states": item.run.state_results}


def _signer(request: HttpRequest) -> str:
    """The name a form's signature fields (`x-signature`) carry: whoever is signed in."""
    return roles.display_name(request.user)


def _saved_form(
    item: ReviewItem, spec: FormSpec, draft: Draft | None, *, signer: str
) -> SchemaForm:
    """The form as the reviewer left it: their draft, with the errors Flows reported on their
    last submission, or a fresh form."""
    if draft is None:
        form, _ = build_form(
            spec, None, partial_url=_form_url(item), context=_run_context(item), signer=signer
        )
        return form
    form = _draft_form(item, spec, draft, signer=signer)
    rejected = item.submissions.filter(status=SubmissionStatus.REJECTED).first()
    if rejected is not None and rejected.created_at >= draft.saved_at - _SAME_MOMENT:
        form.is_valid()
        for param, message in rejected.field_errors:
            form.add_server_error(param, message)
    else:
        form.suppress_errors()
    return form


def _draft_form(item: ReviewItem, spec: FormSpec, draft: Draft, *, signer: str) -> SchemaForm:
    """The form bound to what the draft kept, as typed."""
    data = QueryDict(mutable=True)
    for name, values in draft.data.items():
        data.setlist(name, values)
    form, _ = build_form(
        spec, data, partial_url=_form_url(item), context=_run_context(item), signer=signer
    )
    return form


# A post that lost the form's fields on the way: nothing is saved or sent from it.
_FIELDS_LOST = (
    "Your answer did not reach Flowdesk complete, so nothing was saved or sent. "
    "Check the form and try again."
)

# A draft written in the same transaction as the submission it belongs to.
_SAME_MOMENT = timedelta(seconds=1)


def _colleagues(item: ReviewItem) -> list[Any]:
    users = get_user_model().objects.filter(is_active=True, groups__queues=item.queue)
    # Not offered: whoever its route keeps from it (services.item_reassign refuses them too).
    users = users.exclude(pk__in=selectors.earlier_answerers(item))
    return list(users.distinct().order_by("username")[:100])


def _item_response(
    request: HttpRequest, item: ReviewItem, *, status: int = 200, **extra: Any
) -> HttpResponse:
    """After an action: htmx gets the item panel re-rendered from fresh data; a plain form post
    is redirected to the item page (with the message flashed)."""
    if _htmx(request):
        item = _item_for_user(request, item.pk)
        context = _item_context(request, item, **extra)
        return render(request, "reviewqueue/item.html#item-panel", context, status=status)
    if extra.get("error"):
        messages.error(request, extra["error"])
    return redirect("reviewqueue:item", pk=item.pk)


@login_required
@require_POST
def item_claim(request: HttpRequest, pk: int) -> HttpResponse:
    item = _item_for_user(request, pk)
    try:
        services.item_claim(item=item, user=request.user, ip=_ip(request))
    except services.ReviewError as exc:
        return _item_response(request, item, status=409, error=str(exc))
    return _item_response(request, item)


@login_required
@require_POST
def item_release(request: HttpRequest, pk: int) -> HttpResponse:
    item = _item_for_user(request, pk)
    try:
        services.item_release(item=item, user=request.user, ip=_ip(request))
    except services.ReviewError as exc:
        return _item_response(request, item, status=409, error=str(exc))
    return _item_response(request, item)


@login_required
@require_POST
def item_reassign(request: HttpRequest, pk: int) -> HttpResponse:
    item = _item_for_user(request, pk)
    if not roles.is_supervisor(request.user):
        raise Http404
    chosen = request.POST.get("to", "")
    to = get_user_model().objects.filter(pk=chosen).first() if chosen.isdecimal() else None
    if to is None:
        return _item_response(request, item, status=400, error="Choose who takes this item.")
    try:
        services.item_reassign(item=item, to=to, by=request.user, ip=_ip(request))
    except services.ReviewError as exc:
        return _item_response(request, item, status=409, error=str(exc))
    return _item_response(request, item)


@login_required
@require_POST
def item_resend(request: HttpRequest, pk: int) -> HttpResponse:
    item = _item_for_user(request, pk)
    if not roles.is_supervisor(request.user):
        raise Http404
    # An answer whose outcome is unknown: the supervisor says whether the Run has it.
    arrived = {"arrived": True, "not-arrived": False}.get(request.POST.get("decision", ""))
    try:
        services.submission_retry(item=item, user=request.user, ip=_ip(request), arrived=arrived)
    except services.ReviewError as exc:
        return _item_response(request, item, status=409, error=str(exc))
    return _item_response(request, item)


@login_required
@require_POST
def item_renew(request: HttpRequest, pk: int) -> HttpResponse:
    """The lease heartbeat while the item page is open: extends my claim, answers the time left."""
    item = _item_for_user(request, pk)
    renewed = services.lease_renew(item=item, user=request.user)
    if not _htmx(request):
        if not renewed:
            messages.error(request, "Your claim has ended.")
        return redirect("reviewqueue:item", pk=item.pk)
    item.refresh_from_db()
    context = {"item": item, "mine": renewed}
    return render(request, "reviewqueue/item.html#lease", context, status=200 if renewed else 409)


@login_required
@require_GET
def item_lease(request: HttpRequest, pk: int) -> HttpResponse:
    """The claim's remaining time, polled in the background (reading does not renew it)."""
    item = _item_for_user(request, pk)
    if not _htmx(request):
        return redirect("reviewqueue:item", pk=item.pk)
    context = {"item": item, "mine": item.lease_held_by(request.user)}
    return render(request, "reviewqueue/item.html#lease", context)


@login_required
@require_POST
def item_draft(request: HttpRequest, pk: int) -> HttpResponse:
    """Autosave (debounced by htmx): keep what has been typed and renew the lease."""
    item = _item_for_user(request, pk)
    if FIELDS not in request.POST:
        context = {"item": item, "draft_error": _FIELDS_LOST}
        return render(request, "reviewqueue/item.html#draft-state", context, status=422)
    spec = FormSpec.for_state(item.version.document, item.state_id)
    # A signature is kept as the signer's name, never as posted (schema_forms.SignatureField).
    posted = signed_data(spec, request.POST, signer=_signer(request)) if spec else request.POST
    try:
        draft = services.draft_save(
            item=item,
            user=request.user,
            data=dict(posted.lists()),
            reading=reading_of(request.POST),
        )
    except services.ReviewError as exc:
        context = {"item": item, "draft_error": str(exc)}
        status = 422 if isinstance(exc, services.DraftTooLarge) else 409
        return render(request, "reviewqueue/item.html#draft-state", context, status=status)
    if not _htmx(request):
        return redirect("reviewqueue:item", pk=item.pk)
    return render(request, "reviewqueue/item.html#draft-state", {"item": item, "draft": draft})


@login_required
@require_POST
def item_form(request: HttpRequest, pk: int) -> HttpResponse:
    """Re-render the item's form (or one fieldset) from what has been typed: conditionals and
    array rows. Changes nothing but the draft."""
    item = _item_for_user(request, pk)
    spec = FormSpec.for_state(item.version.document, item.state_id)
    if spec is None or not item.lease_held_by(request.user):
        raise Http404
    if FIELDS not in request.POST:
        return HttpResponse(status=204)  # nothing to re-render from; the page keeps its fields
    form, _ = build_form(
        spec,
        request.POST,
        partial_url=_form_url(item),
        context=_run_context(item),
        signer=_signer(request),
    )
    form.suppress_errors()
    try:
        services.draft_save(
            item=item, user=request.user, data=_fields_of(form), reading=reading_of(request.POST)
        )
    except services.DraftTooLarge as exc:
        response = _item_form_response(request, item, form, status=422, error=str(exc))
        return retarget(response, "#item-panel") if _htmx(request) else response
    if not _htmx(request):
        return redirect("reviewqueue:item", pk=item.pk)
    part = request.POST.get(PART)
    if part is not None and part in form.nodes:
        return render(request, "schema_forms/node.html", {"node": form.nodes[part], "form": form})
    context = {"form": form}
    response = render(request, "reviewqueue/item.html#schema-form", context)
    return retarget(response, "#schema-form") if part is not None else response


def _fields_of(form: SchemaForm) -> dict[str, list[str]]:
    """What a draft keeps: the form's own values (after a row action, rows renumbered)."""
    assert isinstance(form.data, QueryDict)  # build_form binds a QueryDict
    return dict(form.data.lists())


@login_required
@require_POST
def item_submit(request: HttpRequest, pk: int) -> HttpResponse:
    """Validate against the schema (the final word), then hand the answer to the outbox."""
    item = _item_for_user(request, pk)
    spec = FormSpec.for_state(item.version.document, item.state_id)
    if spec is None:
        raise Http404
    if FIELDS not in request.POST:
        return _item_response(request, item, status=409, error=_FIELDS_LOST)
    # Signature fields carry the signed-in person's name whatever was posted for them.
    form, acted = build_form(
        spec,
        request.POST,
        partial_url=_form_url(item),
        context=_run_context(item),
        signer=_signer(request),
    )
    if acted:
        form.suppress_errors()
        return _item_form_response(request, item, form)
    if not form.is_valid():
        return _item_form_response(request, item, form, status=422)
    assert form.answer is not None
    try:
        services.submission_create(
            item=item,
            user=request.user,
            answer=form.answer,
            form_data=_fields_of(form),
            ip=_ip(request),
            reading=reading_of(request.POST),
        )
    except services.ReviewError as exc:
        # Refused (claim lost, the Run moved on, already sent): the input stays as my draft,
        # unless it is more than a draft keeps.
        error, status = str(exc), 409
        try:
            services.draft_keep(
                item=item,
                user=request.user,
                data=_fields_of(form),
                reading=reading_of(request.POST),
            )
        except services.DraftTooLarge as too_large:
            error, status = str(too_large), 422
        return _item_form_response(request, item, form, status=status, error=error)
    if request.POST.get("next") == "1":
        return get_next(request)
    return _item_response(request, item)


def _item_form_response(
    request: HttpRequest, item: ReviewItem, form: SchemaForm, *, status: int = 200, error: str = ""
) -> HttpResponse:
    """The item with the form as typed: errors on their fields, nothing lost."""
    context = _item_context(request, item, form=form, error=error)
    if _htmx(request):
        return render(request, "reviewqueue/item.html#item-panel", context, status=status)
    return render(request, "reviewqueue/item.html", context, status=status)


@login_required
@require_POST
def item_note(request: HttpRequest, pk: int) -> HttpResponse:
    item = _item_for_user(request, pk)
    error = ""
    body = request.POST.get("body", "")
    try:
        services.note_add(item=item, user=request.user, body=body, ip=_ip(request))
        body = ""
    except services.ReviewError as exc:
        error = str(exc)
    if not _htmx(request):
        if error:
            messages.error(request, error)
        return redirect("reviewqueue:item", pk=item.pk)
    context = {
        "item": item,
        "notes": item.notes.select_related("author"),
        "note_error": error,
        "note_body": body,
    }
    return render(request, "reviewqueue/item.html#notes", context, status=422 if error else 200)


# --- My preferences ---------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def preferences(request: HttpRequest) -> HttpResponse:
    """My own settings: the time zone my pages show times in (config.middleware.time_zone),
    and which notifications also come by e-mail."""
    me: Any = request.user  # signed in: login_required
    mine = StaffPreferences.objects.filter(user=me).first()
    form = OwnPreferencesForm(request.POST or None, instance=mine)
    if request.method == "POST" and form.is_valid():
        # update_or_create settles two first saves at once (two tabs) by the unique user.
        StaffPreferences.objects.update_or_create(
            user=me,
            defaults={
                "time_zone": form.cleaned_data["time_zone"],
                "email_notifications": form.cleaned_data["email_notifications"],
            },
        )
        messages.success(request, "Your preferences are saved.")
        target = reverse("reviewqueue:preferences")
        return HttpResponseClientRedirect(target) if _htmx(request) else redirect(target)
    context = {
        "form": form,
        "site_zone": settings.TIME_ZONE,
        "now": timezone.now(),
        "is_supervisor": roles.is_supervisor(request.user),
    }
    return render(
        request, "reviewqueue/preferences.html", context, status=422 if form.errors else 200
    )


# --- Triage ----------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def triage(request: HttpRequest) -> HttpResponse:
    """Runs waiting for input that no item stands for; a supervisor or flow admin says which
    template version (and pause) each is, and its item opens."""
    if not roles.can_triage(request.user):
        raise Http404
    error, chosen_run = "", None
    if request.method == "POST":
        chosen_run = get_object_or_404(selectors.runs_in_triage(), pk=request.POST.get("run"))
        choice = selectors.triage_choice(chosen_run, request.POST.get("choice", ""))
        if choice is None:
            error = "Choose the template version and step this Run is waiting at."
        else:
            version, state_id = choice
            try:
                item = services.run_triage(
                    run=chosen_run,
                    version=version,
                    state_id=state_id,
                    user=request.user,
                    remember=request.POST.get("remember") == "1",
                    ip=_ip(request),
                )
            except services.ReviewError as exc:
                error = str(exc)
            else:
                if item is not None:
                    messages.success(request, "The item is open.")
                    return redirect("reviewqueue:item", pk=item.pk)
                messages.warning(request, "The Run is assigned, but no item opened for it.")
                return redirect("reviewqueue:triage")
    runs = list(selectors.runs_in_triage()[:200])
    context = {
        "entries": [(run, selectors.triage_choices(run)) for run in runs],
        "error": error,
        "chosen_run": chosen_run,
    }
    return render(request, "reviewqueue/triage.html", context, status=422 if error else 200)


# --- Form previews (admin and the Start Run form) --------------------------------------------


def _version_form(template_id: str, number: int, state_id: str) -> tuple[TemplateVersion, FormSpec]:
    """The stored version and the form of one of its states; 404 for anything unknown."""
    version = get_object_or_404(
        TemplateVersion.objects.select_related("template"),
        template__template_id=template_id,
        number=number,
    )
    spec = FormSpec.for_state(version.document, state_id)
    if spec is None:
        raise Http404("No such callback state.")
    return version, spec


def form_for_request(request: HttpRequest, spec: FormSpec, partial_url: str) -> SchemaForm:
    """The form for a GET (defaults) or a POST: a row action or a conditional's `~part` shows
    the data as typed; any other POST is validated."""
    data = request.POST if request.method == "POST" else None
    form, acted = build_form(spec, data, partial_url=partial_url, signer=_signer(request))
    if data is not None:
        if acted or PART in data:
            form.suppress_errors()
        else:
            form.is_valid()
    return form


@login_required
@require_http_methods(["GET", "POST"])
def form_partial(
    request: HttpRequest, template_id: str, number: int, state_id: str
) -> HttpResponse:
    """A schema form re-rendered from what has been typed so far.

    htmx posts here when a field that controls a conditional changes, or when a row is added or
    removed; `~part` names the fieldset to send back. Without htmx the same URL is a whole page
    that works by plain form posts. It changes nothing, so a POST answers with the page rather
    than a redirect.
    """
    version, spec = _version_form(template_id, number, state_id)
    url = reverse("reviewqueue:form_partial", args=[template_id, number, state_id])
    form = form_for_request(request, spec, url)
    context = {"version": version, "spec": spec, "form": form}
    if _htmx(request):
        part = request.POST.get(PART)
        if part is not None and part in form.nodes:
            node = form.nodes[part]
            return render(request, "schema_forms/node.html", {"node": node, "form": form})
        response = render(request, "reviewqueue/form_page.html#schema-form", context)
        # The fieldset asked for is gone (the answer changed under it): replace the whole form.
        return retarget(response, "#schema-form") if part is not None else response
    return render(request, "reviewqueue/form_page.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def signin_locks(request: HttpRequest) -> HttpResponse:
    """Supervisors see who is locked out of signing in and can let them try again."""
    if not roles.is_supervisor(request.user):
        raise Http404
    if request.method == "POST":
        kind, value = request.POST.get("kind", ""), request.POST.get("value", "")
        try:
            services.signin_unlock(kind=kind, value=value, user=request.user, ip=_ip(request))
        except services.ReviewError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"{value} may sign in again.")
        return redirect("reviewqueue:signin_locks")
    context = {
        "locks": selectors.signin_locks(),
        "failure_limit": settings.AXES_FAILURE_LIMIT,
        "cooloff_minutes": round(settings.AXES_COOLOFF_TIME.total_seconds() / 60),
    }
    return render(request, "reviewqueue/signin_locks.html", context)


# --- Declining and postponing ------------------------------------------------------------------


def _reasons_context(
    request: HttpRequest, item: ReviewItem, *, mine: bool, supervisor: bool
) -> dict[str, Any]:
    """What the item panel's Decline and Postpone forms (for the holder) and the postponement
    notice (for everyone) need."""
    reasons = list(item.reasons.select_related("by", "reason"))
    postponer = next((r for r in reversed(reasons) if r.kind == ReasonKind.POSTPONE), None)
    context: dict[str, Any] = {
        "item_reasons": reasons,
        "postponed_by": postponer if item.is_postponed else None,
        "can_resume": item.is_postponed
        and item.status == ItemStatus.OPEN
        and (supervisor or (postponer is not None and postponer.by_id == request.user.pk)),
    }
    if mine:
        now = timezone.localtime()
        context |= {
            "decline_codes": selectors.reason_codes(item, ReasonKind.DECLINE),
            "postpone_codes": selectors.reason_codes(item, ReasonKind.POSTPONE),
            "decline_form": DeclineForm(),
            "postpone_form": PostponeForm(),
            # Offered when someone else answered the Run's earlier pause.
            "return_to": _return_target(item, request.user),
            "return_codes": selectors.reason_codes(item, ReasonKind.RETURN),
            "return_form": DeclineForm(),
            "time_zone_name": timezone.get_current_timezone_name(),
            # The browser's date-and-time field speaks local time without a zone: the person's.
            "postpone_min": now.strftime("%Y-%m-%dT%H:%M"),
            "postpone_max": (now + services.POSTPONE_MAX).strftime("%Y-%m-%dT%H:%M"),
        }
    return context


def _return_target(item: ReviewItem, user: Any) -> Any | None:
    answerer = selectors.earlier_answerer(item)
    return answerer if answerer is not None and answerer.pk != user.pk else None


def _give_back_response(
    request: HttpRequest, item: ReviewItem, form: DeclineForm, kind: str
) -> HttpResponse:
    """Decline, postpone or return from ``form``: to the queue when done (the item is not mine any
    more); the panel with the form open, as typed, the error on its field, when the input is
    refused; the panel with the reason when the item is no longer mine to give back."""
    if form.is_valid():
        data = form.cleaned_data
        try:
            if kind == ReasonKind.DECLINE:
                services.item_decline(
                    item=item,
                    user=request.user,
                    code=data["code"],
                    text=data["text"],
                    ip=_ip(request),
                )
                done = "Declined: the item is back in the queue for someone else."
            elif kind == ReasonKind.RETURN:
                services.item_return(
                    item=item,
                    user=request.user,
                    code=data["code"],
                    text=data["text"],
                    ip=_ip(request),
                )
                item.refresh_from_db()
                assert item.returned_to is not None
                done = f"Returned to {roles.display_name(item.returned_to)} for rework."
            else:
                services.item_postpone(
                    item=item,
                    user=request.user,
                    until=data["until"],
                    code=data["code"],
                    text=data["text"],
                    ip=_ip(request),
                )
                item.refresh_from_db()
                done = f"Postponed until {present.moment(item.postponed_until)}."
        except services.ReasonInvalid as exc:
            form.add_error(exc.field, str(exc))
        except services.ReviewError as exc:
            return _item_response(request, item, status=409, error=str(exc))
        else:
            messages.success(request, done)
            target = reverse("reviewqueue:queue")
            return HttpResponseClientRedirect(target) if _htmx(request) else redirect(target)
    context = _item_context(request, item) | {f"{kind}_form": form, "reason_open": kind}
    if _htmx(request):
        return render(request, "reviewqueue/item.html#item-panel", context, status=422)
    return render(request, "reviewqueue/item.html", context, status=422)


@login_required
@require_POST
def item_decline(request: HttpRequest, pk: int) -> HttpResponse:
    """The holder declines ("not mine"), with a reason: back to the queue, not to them again."""
    item = _item_for_user(request, pk)
    return _give_back_response(request, item, DeclineForm(request.POST), ReasonKind.DECLINE)


@login_required
@require_POST
def item_postpone(request: HttpRequest, pk: int) -> HttpResponse:
    """The holder postpones until a time, with a reason: not workable before then."""
    item = _item_for_user(request, pk)
    return _give_back_response(request, item, PostponeForm(request.POST), ReasonKind.POSTPONE)


@login_required
@require_POST
def item_return(request: HttpRequest, pk: int) -> HttpResponse:
    """The holder returns the item for rework to whoever answered the Run's earlier pause."""
    item = _item_for_user(request, pk)
    return _give_back_response(request, item, DeclineForm(request.POST), ReasonKind.RETURN)


@login_required
@require_POST
def item_resume(request: HttpRequest, pk: int) -> HttpResponse:
    """A supervisor (or whoever postponed it) brings a postponed item back now."""
    item = _item_for_user(request, pk)
    try:
        services.item_resume_early(item=item, user=request.user, ip=_ip(request))
    except services.ReviewError as exc:
        return _item_response(request, item, status=409, error=str(exc))
    if not _htmx(request):
        messages.success(request, "The item is back in the queue.")
    return _item_response(request, item)


# --- Moving work (supervisors) ----------------------------------------------------------------


def _move_context(
    request: HttpRequest, filters: selectors.QueueFilters, page: selectors.QueuePage
) -> dict[str, Any]:
    """The queue page's bulk move form: the people who work in the listed items' queues, and
    how many items "all matching this filter" takes (counted up to the cap, only when the
    filter matches more than this page, and never for the live refresh of the rows)."""
    context: dict[str, Any] = {
        "can_move": True,
        "move_form": MoveForm(page_size=selectors.PAGE_SIZE),
        "move_reasons": services.MOVE_REASONS,
        "move_max": services.MOVE_MAX,
        "ticked": set(),
    }
    if _htmx(request) and request.method == "GET":
        return context  # the polled rows: only their checkboxes
    queue_ids = {item.queue_id for item in page.items}
    if filters.queue is not None:
        queue_ids.add(filters.queue)
    people = get_user_model().objects.filter(is_active=True, groups__queues__in=queue_ids)
    context["move_people"] = list(people.distinct().order_by("username")[:200])
    if page.has_next:
        matching = selectors.items_matching(request.user, filters).order_by().values("pk")
        context["move_matching"] = matching[: services.MOVE_MAX + 1].count()
    return context


def _matching_ids(
    request: HttpRequest, filters: selectors.QueueFilters, to: Any | None
) -> tuple[list[int], bool]:
    """The items the page's filter matches now, in its order, up to the cap (and whether there
    were more); those already where they would go are left out, so that moving again takes the
    next ones."""
    items = selectors.items_matching(request.user, filters)
    if to is None:
        items = items.exclude(claimed_by__isnull=True)
    else:
        items = items.exclude(status=ItemStatus.CLAIMED, claimed_by=to)
    order = selectors.SORTS[filters.sort][1]
    ids = list(items.order_by(*order).values_list("pk", flat=True)[: services.MOVE_MAX + 1])
    return ids[: services.MOVE_MAX], len(ids) > services.MOVE_MAX


def _ticked(request: HttpRequest) -> set[int]:
    """The ticked rows as posted, to show them ticked again with an error."""
    return {int(v) for v in request.POST.getlist("item") if v.isdecimal() and len(v) < 12}


@login_required
@require_POST
def queue_move(request: HttpRequest) -> HttpResponse:
    """Supervisors move the ticked items, or all matching the page's filter (up to
    ``services.MOVE_MAX``), to a person or back to the queue, with a reason.

    Posted to a URL that carries the page's query string: "all matching" runs the page's filter
    again here, never trusting a list of ids for more than a page shows. Without htmx: back to
    the page with the outcome flashed, or the page with the errors on their fields and the rows
    still ticked. With htmx: the rows from fresh data, and the form (outcome or errors) out of
    band."""
    if not roles.is_supervisor(request.user):
        raise Http404
    form = MoveForm(request.POST, page_size=selectors.PAGE_SIZE)
    moved, more = None, False
    if form.is_valid():
        data = form.cleaned_data
        ids = data["item"]
        query, search_gone = searches.search_query(request)
        if data["scope"] == "all" and search_gone:
            form.add_error("scope", "That search is no longer kept: search again first.")
        else:
            if data["scope"] == "all":
                filters = selectors.QueueFilters.from_query(query, supervisor=True)
                ids, more = _matching_ids(request, filters, data["to"])
            try:
                moved = services.items_reassign_bulk(
                    item_ids=ids,
                    to=data["to"],
                    by=request.user,
                    reason=data["reason"],
                    ip=_ip(request),
                )
            except services.ReasonInvalid as exc:
                form.add_error(exc.field, str(exc))
    outcome = ""
    if moved is not None:
        outcome = moved.summary + (
            f" More than {services.MOVE_MAX} matched: the first {services.MOVE_MAX} were "
            "taken; move again for the rest."
            if more
            else ""
        )
        if not _htmx(request):
            (messages.warning if moved.refused else messages.success)(request, outcome)
            return redirect(
                f"{reverse('reviewqueue:queue')}?{searches.query_without(request.GET, 'since')}"
            )
    context = _queue_context(request)
    if moved is None:
        context |= {"move_form": form, "ticked": _ticked(request)}
    context |= {"moved": moved, "move_outcome": outcome}
    status = 200 if moved is not None else 422
    if not _htmx(request):
        return render(request, "reviewqueue/queue.html", context, status=status)
    rows = render_to_string("reviewqueue/queue.html#queue-rows", context, request)
    mover = render_to_string("reviewqueue/queue.html#bulk-move", context | {"oob": True}, request)
    return HttpResponse(rows + mover, status=status)
