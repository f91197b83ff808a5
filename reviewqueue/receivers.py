"""Signal receivers of the review queue, connected in ``apps.ready``."""

from typing import Any

from django.http import HttpRequest

from reviewqueue import services


def on_logged_in(*, request: HttpRequest, user: Any, **_: Any) -> None:
    services.audit_record(action="login", actor=user, ip=request.META.get("REMOTE_ADDR"))


def on_logged_out(*, request: HttpRequest, user: Any, **_: Any) -> None:
    if user is not None:
        services.audit_record(action="logout", actor=user, ip=request.META.get("REMOTE_ADDR"))
