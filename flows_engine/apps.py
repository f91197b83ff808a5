from django.apps import AppConfig


class FlowsEngineConfig(AppConfig):
    name = "flows_engine"
    verbose_name = "Flows engine (local)"
