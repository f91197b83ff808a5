from django.apps import AppConfig


class FlowsIntegrationConfig(AppConfig):
    name = "flows_integration"
    verbose_name = "Flows integration"

    def ready(self) -> None:
        from audit import tracking
        from flows_integration.models import FlowTemplate, PauseRule, TemplateVersion

        tracking.track(FlowTemplate, TemplateVersion, PauseRule)
