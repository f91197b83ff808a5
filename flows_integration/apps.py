from django.apps import AppConfig


class FlowsIntegrationConfig(AppConfig):
    name = "flows_integration"
    verbose_name = "Flows integration"
