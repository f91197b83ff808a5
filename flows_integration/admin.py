from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.views.decorators.http import require_POST

import flowspec
from flows_integration import client as flows_client
from flows_integration import services
from flows_integration.models import (
    ApiHealth,
    FlowRun,
    FlowTemplate,
    SyncPass,
    TemplateVersion,
    WebhookEvent,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows that sync writes; an admin may look, never edit."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class VersionInline(admin.TabularInline):
    model = TemplateVersion
    fields = readonly_fields = ("number", "stored_at")
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(FlowTemplate)
class FlowTemplateAdmin(admin.ModelAdmin):
    list_display = ["template_id", "name", "created_at"]
    search_fields = ["template_id", "name"]
    readonly_fields = ["template_id", "created_at"]
    inlines = [VersionInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # a template arrives with its first version


class VersionStoreForm(forms.ModelForm):
    template_id = forms.SlugField(
        help_text="The template's id on the Flows server (a new id creates the template)."
    )
    number = forms.IntegerField(
        min_value=1,
        required=False,
        help_text="The server's version number; blank takes the next one.",
    )
    upload = forms.FileField(required=False, help_text="Or upload the YAML file instead.")
    source = forms.CharField(
        label="Template document",
        strip=False,  # stored exactly as published
        required=False,
        widget=forms.Textarea(attrs={"rows": 28, "cols": 100, "spellcheck": "false"}),
        help_text="Paste the YAML (or JSON) as published.",
    )

    class Meta:
        model = TemplateVersion
        fields = ["source"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        upload = cleaned.get("upload")
        source = cleaned.get("source") or ""
        if upload is not None:
            try:
                source = upload.read().decode()
            except UnicodeDecodeError:
                self.add_error("upload", "The file is not UTF-8 text.")
                return cleaned
        if not source.strip():
            self.add_error("source", "Paste the template document or upload its file.")
            return cleaned
        try:
            flowspec.load_template(source)
        except flowspec.TemplateInvalid as exc:
            self.add_error("source", [str(error) for error in exc.errors])
            return cleaned
        template_id, number = cleaned.get("template_id"), cleaned.get("number")
        if (
            number
            and TemplateVersion.objects.filter(
                template__template_id=template_id, number=number
            ).exists()
        ):
            self.add_error("number", f"{template_id} v{number} is stored already.")
        cleaned["source"] = source
        return cleaned


@admin.register(TemplateVersion)
class TemplateVersionAdmin(admin.ModelAdmin):
    list_display = ["__str__", "template", "number", "stored_at"]
    list_filter = ["template"]
    readonly_fields = ("template", "number", "stored_at", "source")
    change_list_template = "admin/flows_integration/templateversion/change_list.html"

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any):
        if obj is None:
            kwargs["form"] = VersionStoreForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        if obj is None:
            return ("template_id", "number", "source", "upload")
        return self.readonly_fields

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return () if obj is None else self.readonly_fields

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        stored = services.version_store(
            template_id=form.cleaned_data["template_id"],
            number=form.cleaned_data.get("number"),
            source=form.cleaned_data["source"],
        )
        obj.pk, obj.template, obj.number = stored.pk, stored.template, stored.number

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # versions are immutable once stored

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_urls(self) -> list:
        return [
            path(
                "import/",
                self.admin_site.admin_view(require_POST(self.import_view)),
                name="flows_integration_templateversion_import",
            ),
            *super().get_urls(),
        ]

    def import_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_add_permission(request):
            return HttpResponse(status=403)
        try:
            imported = services.templates_import()
        except flows_client.NotSupported:
            messages.error(request, "This Flows server does not list its templates.")
        except flows_client.FlowsError as exc:
            messages.error(request, f"The Flows server could not be asked: {exc}")
        else:
            names = ", ".join(str(version) for version in imported) or "nothing new"
            messages.success(request, f"Imported {names}.")
        return HttpResponseRedirect(reverse("admin:flows_integration_templateversion_changelist"))


@admin.register(FlowRun)
class FlowRunAdmin(ReadOnlyAdmin):
    list_display = ["flow_run_id", "template", "version", "status", "state_id", "synced_at"]
    list_filter = ["status", "state_unresolved", "template"]
    search_fields = ["flow_run_id"]
    list_select_related = ["template", "version__template"]
    show_full_result_count = False


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    list_display = ["svix_id", "event_type", "flow_run_id", "status", "received_at", "processed_at"]
    list_filter = ["event_type", "status"]
    search_fields = ["svix_id", "flow_run_id"]
    show_full_result_count = False


@admin.register(ApiHealth)
class ApiHealthAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "last_success_at", "consecutive_failures", "last_failure_at"]


@admin.register(SyncPass)
class SyncPassAdmin(ReadOnlyAdmin):
    list_display = [
        "started_at",
        "runs_checked",
        "runs_changed",
        "runs_failed",
        "throttled",
        "skipped",
        "duration_ms",
    ]
