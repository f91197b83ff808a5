from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

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


class PublishForm(forms.ModelForm):
    template_id = forms.SlugField(
        help_text="A new id creates a template; an existing one gets its next version."
    )
    source = forms.CharField(
        label="Template document",
        strip=False,  # stored exactly as published
        widget=forms.Textarea(attrs={"rows": 30, "cols": 100, "spellcheck": "false"}),
        help_text="YAML or JSON, as described in docs/template-language.md.",
    )

    class Meta:
        model = TemplateVersion
        fields = ["source"]

    def clean_source(self) -> str:
        source = self.cleaned_data["source"]
        try:
            flowspec.load_template(source)
        except flowspec.TemplateInvalid as exc:
            raise forms.ValidationError([str(error) for error in exc.errors]) from None
        return source


@admin.register(TemplateVersion)
class TemplateVersionAdmin(admin.ModelAdmin):
    list_display = ["__str__", "template", "number", "published_at"]
    list_filter = ["template"]
    readonly_fields = ("template", "number", "published_at", "source")

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any):
        if obj is None:
            kwargs["form"] = PublishForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return ("template_id", "source") if obj is None else self.readonly_fields

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return () if obj is None else self.readonly_fields

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        published = services.version_publish(
            template_id=form.cleaned_data["template_id"], source=form.cleaned_data["source"]
        )
        obj.pk = published.pk
        obj.template = published.template
        obj.number = published.number

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
