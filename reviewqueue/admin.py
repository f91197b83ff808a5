"""Admin previews of the forms of every stored template version.

`flows_integration` may not import the review queue, which owns the forms, so the preview is
added from here: its TemplateVersion admin is replaced by a subclass that adds a preview page per
callback state (and one for the Start Run input) and links to them from the version's page.
"""

from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.views.decorators.http import require_http_methods

from audit.admin import PatientDataAdmin
from flows_integration.admin import ReadOnlyAdmin, TemplateVersionAdmin
from flows_integration.models import TemplateVersion
from reviewqueue.forms import PreferencesForm
from reviewqueue.models import (
    BusinessCalendar,
    DayOff,
    OpeningHours,
    Queue,
    ReasonCode,
    ReviewItem,
    Route,
    SlaClock,
    StaffPreferences,
)
from reviewqueue.schema_forms import START, FormSpec
from reviewqueue.views import form_for_request

admin.site.unregister(TemplateVersion)


@admin.register(TemplateVersion)
class TemplateVersionPreviewAdmin(TemplateVersionAdmin):
    change_form_template = "reviewqueue/admin/templateversion_change_form.html"

    def get_urls(self) -> list[URLPattern]:  # type: ignore[override]
        preview = require_http_methods(["GET", "POST"])(self.preview_view)
        return [
            path(
                "<path:object_id>/preview/<str:state_id>/",
                self.admin_site.admin_view(preview),
                name="flows_integration_templateversion_preview",
            ),
            *super().get_urls(),
        ]

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        version = self.get_object(request, unquote(object_id))
        previews = self._previews(version) if version is not None else []
        extra = {**(extra_context or {}), "form_previews": previews}
        return super().change_view(request, object_id, form_url, extra_context=extra)

    def _previews(self, version: TemplateVersion) -> list[tuple[str, str, str]]:
        """(state id, title, preview URL) for the Start Run form and every callback state."""
        previews = []
        for state_id in FormSpec.state_ids(version.document):
            spec = FormSpec.for_state(version.document, state_id)
            assert spec is not None
            url = reverse(
                "admin:flows_integration_templateversion_preview", args=[version.pk, state_id]
            )
            label = "Start Run input" if state_id == START else state_id
            previews.append((label, spec.title, url))
        return previews

    def preview_view(self, request: HttpRequest, object_id: str, state_id: str) -> HttpResponse:
        """A live preview: try values, see the errors, and the JSON that would be sent."""
        version = self.get_object(request, unquote(object_id))
        if version is None:
            raise Http404("No such template version.")
        if not self.has_view_permission(request, version):
            raise PermissionDenied
        spec = FormSpec.for_state(version.document, state_id)
        if spec is None:
            raise Http404("No such callback state.")
        partial_url = reverse(
            "reviewqueue:form_partial",
            args=[version.template.template_id, version.number, state_id],
        )
        form = form_for_request(request, spec, partial_url)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": version,
            "title": f"Preview: {spec.title}",
            "subtitle": str(version),
            "spec": spec,
            "state_id": state_id,
            "form": form,
            "previews": self._previews(version),
        }
        return TemplateResponse(request, "reviewqueue/admin/preview.html", context)


# --- Queues, routing, and read-only views of the work ----------------------------------------


class RouteInline(admin.TabularInline):
    model = Route
    fields = (
        "template",
        "state_id",
        "priority",
        "priority_path",
        "sla",
        "not_by_earlier_answerers",
    )
    extra = 1


class ReasonCodeInline(admin.TabularInline):
    """The reasons reviewers choose from when they decline or postpone this queue's items. A
    code once used cannot be deleted (its uses keep it): untick "active" to retire it."""

    model = ReasonCode
    fields = ("kind", "code", "title", "active", "order")
    extra = 1
    verbose_name = "reason for declining, postponing or returning"
    verbose_name_plural = "reasons for declining, postponing or returning"


@admin.register(Queue)
class QueueAdmin(admin.ModelAdmin):
    list_display = ("name", "sla", "sla_clock", "calendar", "is_default", "team_names")
    list_select_related = ("calendar",)
    filter_horizontal = ("teams",)
    inlines = [RouteInline, ReasonCodeInline]
    fieldsets = [
        (None, {"fields": ("name", "description", "teams", "is_default")}),
        ("Get next", {"fields": ("next_item_strategy",)}),
        (
            "SLA and escalation",
            {
                "description": "An item is due its route's SLA (else the queue's) after it "
                "opens, counted on the SLA clock. It escalates (priority up, supervisors told) "
                "“warn before” its due time, and again when it is overdue.",
                "fields": (
                    "sla",
                    "sla_clock",
                    "calendar",
                    "sla_paused_while_postponed",
                    "warn_before",
                ),
            },
        ),
    ]

    @admin.display(description="Teams")
    def team_names(self, queue: Queue) -> str:
        return ", ".join(team.name for team in queue.teams.all())

    def get_queryset(self, request: HttpRequest) -> QuerySet[Queue]:
        return super().get_queryset(request).prefetch_related("teams")


@admin.register(Route)
class RouteAdmin(admin.ModelAdmin):
    list_display = (
        "template",
        "state_id",
        "queue",
        "priority",
        "priority_path",
        "sla",
        "not_by_earlier_answerers",
    )
    list_filter = ("queue", "not_by_earlier_answerers")
    list_select_related = ("template", "queue")


class OpeningHoursFormSet(BaseInlineFormSet):
    def clean(self) -> None:
        """Refuse to remove the last opening hours of a calendar that a queue counts business
        hours on: its items would never fall due (``Queue.clean`` refuses the same)."""
        super().clean()
        kept = [
            form
            for form in self.forms
            if form.cleaned_data and not form.cleaned_data.get("DELETE", False)
        ]
        calendar = self.instance
        if kept or calendar.pk is None:
            return
        in_use = calendar.queues.filter(sla_clock=SlaClock.BUSINESS).order_by("name")
        names = ", ".join(queue.name for queue in in_use)
        if names:
            raise ValidationError(
                f"Queues count business hours on this calendar ({names}): it needs opening "
                "hours. Put those queues on another calendar or on calendar hours first."
            )


class OpeningHoursInline(admin.TabularInline):
    """One row per open stretch: a weekday with a lunch break has two, a closed day none."""

    model = OpeningHours
    formset = OpeningHoursFormSet
    fields = ("weekday", "opens", "closes")
    extra = 1


class DayOffInline(admin.TabularInline):
    """Days the site is closed besides the country's public holidays."""

    model = DayOff
    fields = ("date", "name")
    extra = 1


@admin.register(BusinessCalendar)
class BusinessCalendarAdmin(admin.ModelAdmin):
    list_display = ("name", "time_zone", "country", "subdivision", "queue_names")
    fields = ("name", "time_zone", "country", "subdivision")
    inlines = [OpeningHoursInline, DayOffInline]

    @admin.display(description="Queues")
    def queue_names(self, calendar: BusinessCalendar) -> str:
        return ", ".join(queue.name for queue in calendar.queues.all())

    def get_queryset(self, request: HttpRequest) -> QuerySet[BusinessCalendar]:
        return super().get_queryset(request).prefetch_related("queues")


@admin.register(ReviewItem)
class ReviewItemAdmin(PatientDataAdmin, ReadOnlyAdmin):
    run_id_field = "run_ref"
    list_display = ("run_ref", "state_id", "queue", "status", "claimed_by", "priority", "due_at")
    list_filter = ("status", "queue")
    list_select_related = ("queue", "claimed_by")
    search_fields = ("=run_ref",)
    show_full_result_count = False  # no COUNT(*) over every item on each page


@admin.register(StaffPreferences)
class StaffPreferencesAdmin(admin.ModelAdmin):
    form = PreferencesForm
    fields = ("user", "time_zone")
    list_display = ("user", "time_zone")
    list_select_related = ("user",)
    search_fields = ("user__username",)
    autocomplete_fields = ("user",)
