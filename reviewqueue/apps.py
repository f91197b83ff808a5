from django.apps import AppConfig


class ReviewqueueConfig(AppConfig):
    name = "reviewqueue"
    verbose_name = "Review queue"

    def ready(self) -> None:
        from axes.signals import user_locked_out
        from django.contrib.auth.signals import (
            user_logged_in,
            user_logged_out,
            user_login_failed,
        )

        from audit import tracking
        from flows_integration.signals import run_status_changed, runs_status_changed
        from reviewqueue import receivers, services
        from reviewqueue.models import BusinessCalendar, DayOff, OpeningHours, Queue, Route

        tracking.track(Queue, Route, BusinessCalendar, OpeningHours, DayOff)

        run_status_changed.connect(
            services.on_run_status_changed, dispatch_uid="reviewqueue.item_follow_run"
        )
        runs_status_changed.connect(
            services.on_runs_status_changed, dispatch_uid="reviewqueue.items_follow_runs"
        )
        user_logged_in.connect(receivers.on_logged_in, dispatch_uid="reviewqueue.audit_login")
        user_logged_out.connect(receivers.on_logged_out, dispatch_uid="reviewqueue.audit_logout")
        user_login_failed.connect(
            receivers.on_login_failed, dispatch_uid="reviewqueue.audit_login_failed"
        )
        user_locked_out.connect(receivers.on_locked_out, dispatch_uid="reviewqueue.audit_lockout")
