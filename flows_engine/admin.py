from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

import flowspec
from flows_engine import services
from flows_engine.models import (
    ApiClient,
    Run,
    Template,
    TemplateVersion,
    WebhookAttempt,
    WebhookEndpoint,
    WebhookMessage,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows the engine writes itself: viewable, never editable by hand."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class VersionInline(admin.TabularInline):
    model = TemplateVersion
    fields = readonly_fields = ("number", "published_at")
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Template)
class TemplateAdmin(admin.ModelAdmin):
    list_display = ["template_id", "name", "latest", "created_at"]
    search_fields = ["template_id", "name"]
    inlines = [VersionInline]
    readonly_fields = ["template_id", "created_at"]

    @admin.display(description="Latest version")
    def latest(self, obj: Template) -> int | None:
        version = obj.latest_version()
        return version.number if version else None

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # templates come into being by publishing their first version


PUBLISH = "Publish a new version to the engine"


class PublishForm(forms.ModelForm):
    template_id = forms.SlugField(
        max_length=services.TEMPLATE_ID_MAX,
        help_text="A new id creates a template; an existing one gets its next version.",
    )
    source = forms.CharField(
        label="Template document",
        strip=False,  # stored exactly as published
        widget=forms.Textarea(attrs={"rows": 30, "cols": 100, "spellcheck": "false"}),
        help_text="YAML or JSON, as described in docs/template-language.md. If it names its "
        "version (metadata.version), that must be the number it gets here.",
    )

    class Meta:
        model = TemplateVersion
        fields = ["source"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        template_id, source = cleaned.get("template_id"), cleaned.get("source")
        if template_id and source:
            # The same checks as publishing itself, and as the API's publish call.
            try:
                services.version_publish_check(template_id=template_id, source=source)
            except flowspec.TemplateInvalid as exc:
                self.add_error("source", [_problem(error) for error in exc.errors])
        return cleaned


def _problem(error: flowspec.SpecError) -> str:
    # The number's message reads as a sentence; every other one names where it is.
    return error.message if error.location == "metadata.version" else str(error)


@admin.register(TemplateVersion)
class TemplateVersionAdmin(admin.ModelAdmin):
    """Versions the engine runs. Adding one here publishes it: new Runs use it at once."""

    list_display = ["__str__", "template", "number", "published_at"]
    list_filter = ["template"]
    readonly_fields = ("template", "number", "published_at", "source")
    change_list_template = "admin/flows_engine/templateversion/change_list.html"
    add_form_template = "admin/flows_engine/templateversion/add_form.html"

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any):
        if obj is None:
            kwargs["form"] = PublishForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return ("template_id", "source") if obj is None else self.readonly_fields

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return () if obj is None else self.readonly_fields

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        return super().add_view(
            request, form_url, extra_context={"title": PUBLISH, **(extra_context or {})}
        )

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None):
        return super().changelist_view(
            request, extra_context={"publish_label": PUBLISH, **(extra_context or {})}
        )

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        published = services.version_publish(
            template_id=form.cleaned_data["template_id"], source=form.cleaned_data["source"]
        )
        obj.pk = published.pk
        obj.template = published.template
        obj.number = published.number

    def response_add(
        self, request: HttpRequest, obj: Any, post_url_continue: str | None = None
    ) -> HttpResponse:
        messages.success(
            request,
            f"Published {obj} to the engine: new Runs of {obj.template.template_id} use "
            f"version {obj.number}. Flowdesk keeps its copy for forms under the same number.",
        )
        return HttpResponseRedirect(reverse("admin:flows_engine_templateversion_changelist"))

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # versions are immutable

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ApiClient)
class ApiClientAdmin(admin.ModelAdmin):
    list_display = ["client_id", "name", "environment", "active", "created_at"]
    list_filter = ["environment", "active"]
    exclude = ["secret_hash"]


@admin.register(Run)
class RunAdmin(ReadOnlyAdmin):
    list_display = ["id", "version", "environment", "status", "state_id", "updated_at"]
    list_filter = ["status", "environment", "version__template"]
    search_fields = ["id"]
    list_select_related = ["version__template"]


class AttemptInline(admin.TabularInline):
    model = WebhookAttempt
    fields = readonly_fields = (
        "attempted_at",
        "response_status",
        "error",
        "duration_ms",
        "response_body",
    )
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = ["url", "environment", "active", "description", "created_at"]
    list_filter = ["environment", "active"]


@admin.register(WebhookMessage)
class WebhookMessageAdmin(ReadOnlyAdmin):
    list_display = ["msg_id", "event_type", "endpoint", "status", "attempts", "next_attempt_at"]
    list_filter = ["status", "event_type", "endpoint"]
    search_fields = ["msg_id", "run__id"]
    inlines = [AttemptInline]
