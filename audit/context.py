"""Who is acting, for events written far from the request (a model saved in the admin, a
signal): the middleware sets it for the length of each request."""

from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest, HttpResponse

from config.client_ip import client_ip


@dataclass(frozen=True)
class Acting:
    actor: Any = None
    ip: str | None = None


_request: ContextVar[HttpRequest | None] = ContextVar("audit_request", default=None)


def current() -> Acting:
    """The signed-in person and client address of the request being served, if any. Read at
    the moment of the event, so a sign-in or sign-out within the request is seen."""
    request = _request.get()
    if request is None:
        return Acting()  # a task, a command: nobody signed in
    user = getattr(request, "user", None)
    return Acting(user if getattr(user, "is_authenticated", False) else None, client_ip(request))


def acting_request(get_response: Callable[[HttpRequest], HttpResponse]) -> Callable:
    """Middleware: events written while serving a request name its person and address."""

    def middleware(request: HttpRequest) -> HttpResponse:
        token = _request.set(request)
        try:
            return get_response(request)
        finally:
            _request.reset(token)

    return middleware
