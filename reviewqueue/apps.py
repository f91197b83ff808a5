from django.apps import AppConfig


class ReviewqueueConfig(AppConfig):
    name = "reviewqueue"
    verbose_name = "Review queue"

    def ready(self) -> None:
        from flows_integration.signals import run_status_changed
        from reviewqueue import services

        run_status_changed.connect(
            services.on_run_status_changed, dispatch_uid="reviewqueue.item_follow_run"
        )
