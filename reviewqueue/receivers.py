"""Signal receivers of the review queue, connected in ``apps.ready``."""

from typing import Any

from django.http import HttpRequest

from reviewqueue import services


def on_run_status_changed(**kwargs: Any) -> None:
    """Items open and close with the Run's pauses (sent inside the mirror's transaction)."""
    services.on_run_status_changed(**kwargs)


def on_logged_in(*, request: HttpRequest, user: Any, **_: Any) -> None:
    services.audit_record(action="login", actor=user, ip=request.META.get("REMOTE_ADDR"))


def on_logged_out(*, request: HttpRequest, user: Any, **_: Any) -> None:
    if user is not None:
        services.audit_record(action="logout", actor=user, ip=request.META.get("REMOTE_ADDR"))
