from django.apps import AppConfig


class IntakeConfig(AppConfig):
    name = "intake"
    verbose_name = "Starting Runs"

    def ready(self) -> None:
        from audit import tracking
        from intake.models import ApiClient

        tracking.track(ApiClient)
