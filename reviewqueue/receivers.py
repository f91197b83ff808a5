"""Signal receivers of the review queue, connected in ``apps.ready``."""

from typing import Any

from django.http import HttpRequest

from config.client_ip import client_ip
from reviewqueue import services


def on_logged_in(*, request: HttpRequest, user: Any, **_: Any) -> None:
    # Single sign-on marks its users (reviewqueue/oidc.py); a password sign-in says nothing.
    method = {"method": user.sign_in_method} if hasattr(user, "sign_in_method") else {}
    services.audit_record(action="login", actor=user, ip=client_ip(request), **method)


def on_logged_out(*, request: HttpRequest, user: Any, **_: Any) -> None:
    if user is not None:
        services.audit_record(action="logout", actor=user, ip=client_ip(request))


def on_login_failed(
    *, credentials: dict[str, Any], request: HttpRequest | None = None, **_: Any
) -> None:
    """A wrong password (or a locked-out try): the name tried, never the password."""
    if "nonce" in credentials:
        return  # A single sign-on callback: reviewqueue/oidc.py records it, with its reason.
    username = str(credentials.get("username") or "")[:150]
    ip = client_ip(request) if request is not None else None
    services.audit_record(action="login.failed", ip=ip, username=username)


def on_locked_out(*, request: HttpRequest, username: str | None, ip_address: str, **_: Any) -> None:
    services.audit_record(
        action="login.locked_out", ip=ip_address or None, username=(username or "")[:150]
    )
