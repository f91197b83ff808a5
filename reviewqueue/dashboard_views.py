"""The supervisors' dashboard: counts only, each linking to the list it counts, and each
supervisor's saved views (named filters).

It shows no patient data (numbers, queue names and colleagues' names), so reading it writes no
audit row, unlike the queue and item pages.
"""

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import Group
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from flows_integration.models import FlowTemplate
from reviewqueue import dashboard_selectors, dashboard_services, roles
from reviewqueue.models import Queue, SavedView

REFRESH_SECONDS = 60


class SavedViewForm(forms.Form):
    """A name, and the filters to save under it: each checked against what exists, so that a
    saved query string holds nothing but ids and periods (never searched text)."""

    name = forms.CharField(max_length=100, strip=True)
    team = forms.TypedChoiceField(required=False, coerce=int, empty_value=None)
    queue = forms.TypedChoiceField(required=False, coerce=int, empty_value=None)
    template = forms.ChoiceField(required=False)
    period = forms.ChoiceField(choices=list(dashboard_selectors.PERIODS.items()))

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        none = [("", "—")]
        teams = Group.objects.filter(queues__isnull=False).distinct().values_list("pk", "name")
        queues = Queue.objects.values_list("pk", "name")
        templates = FlowTemplate.objects.values_list("template_id", "name")
        choices: dict[str, list[tuple[str, str]]] = {
            "team": none + [(str(pk), name) for pk, name in teams],
            "queue": none + [(str(pk), name) for pk, name in queues],
            "template": none + [(slug, name or slug) for slug, name in templates],
        }
        for name, options in choices.items():
            field = self.fields[name]
            assert isinstance(field, forms.ChoiceField)
            field.choices = options

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        if SavedView.objects.filter(user=self.user, name=name).exists():
            raise forms.ValidationError(
                f"You already have a view called “{name}”: choose another name, or delete that "
                "one first."
            )
        return name

    def filters(self) -> dashboard_selectors.DashboardFilters:
        data = self.cleaned_data
        return dashboard_selectors.DashboardFilters(
            queue=data["queue"],
            period=data["period"],
            team=data["team"],
            template=data["template"],
        )


def _saved_views(request: HttpRequest) -> Any:
    user: Any = request.user
    return SavedView.objects.filter(user=user)


def _supervisor(request: HttpRequest) -> None:
    if not roles.is_supervisor(request.user):
        raise Http404


def _context(request: HttpRequest, filters: dashboard_selectors.DashboardFilters) -> dict[str, Any]:
    return {
        "filters": filters,
        "board": dashboard_selectors.dashboard(filters=filters),
        "periods": dashboard_selectors.PERIODS,
        "age_labels": dashboard_selectors.AGE_LABELS.values(),
        "refresh_seconds": REFRESH_SECONDS,
        "saved_views": _saved_views(request),
    }


@login_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    """Queues and people at a glance; htmx refreshes the numbers every minute."""
    _supervisor(request)
    filters = dashboard_selectors.DashboardFilters.from_query(request.GET)
    context = _context(request, filters)
    if getattr(request, "htmx", False):
        return render(request, "reviewqueue/dashboard.html#dashboard-numbers", context)
    return render(request, "reviewqueue/dashboard.html", context)


@login_required
@require_POST
def saved_view_create(request: HttpRequest) -> HttpResponse:
    """Save the dashboard's current filters under a name. Without htmx: back to the saved view;
    with htmx: the list of saved views re-rendered, with the name's error if any."""
    _supervisor(request)
    form = SavedViewForm(request.POST, user=request.user)
    if form.is_valid():
        filters = form.filters()
        try:
            dashboard_services.saved_view_create(
                user=request.user, name=form.cleaned_data["name"], query=filters.query
            )
        except dashboard_services.ViewNameTaken:
            form.add_error("name", "You already have a view called that: choose another name.")
    if form.is_valid():
        url = f"{reverse('reviewqueue:dashboard')}?{filters.query}".rstrip("?")
        if getattr(request, "htmx", False):
            context: dict[str, Any] = {"saved_views": _saved_views(request)}
            context |= {"filters": filters, "saved": form.cleaned_data["name"]}
            return render(request, "reviewqueue/dashboard.html#saved-views", context)
        messages.success(request, f"Saved the view “{form.cleaned_data['name']}”.")
        return redirect(url)
    # The filters as posted, when they hold: the page shows what was being saved.
    shown = form.filters() if not (form.errors.keys() - {"name"}) else None
    filters = shown or dashboard_selectors.DashboardFilters()
    if getattr(request, "htmx", False):
        context = {"saved_views": _saved_views(request), "filters": filters, "view_form": form}
        return render(request, "reviewqueue/dashboard.html#saved-views", context, status=422)
    context = _context(request, filters) | {"view_form": form}
    return render(request, "reviewqueue/dashboard.html", context, status=422)


@login_required
@require_POST
def saved_view_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """Delete one of my saved views (another person's is a 404, as one that does not exist)."""
    _supervisor(request)
    view = get_object_or_404(_saved_views(request), pk=pk)
    dashboard_services.saved_view_delete(view=view)
    if getattr(request, "htmx", False):
        filters = dashboard_selectors.DashboardFilters.from_query(request.GET)
        context = {"saved_views": _saved_views(request)}
        return render(
            request, "reviewqueue/dashboard.html#saved-views", context | {"filters": filters}
        )
    messages.success(request, f"Deleted the view “{view.name}”.")
    return redirect(f"{reverse('reviewqueue:dashboard')}?{request.GET.urlencode()}".rstrip("?"))
