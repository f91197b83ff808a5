"""The client's address, for audit rows: one place that decides whom to believe.

Behind a reverse proxy ``REMOTE_ADDR`` is the proxy, so every audit row would name it. The
address the proxy saw is in a header it appends to (``X-Forwarded-For``), but everything left of
what our own proxies appended was written by the client and can say anything. So only the entry
the outermost trusted proxy appended is taken: with ``FLOWDESK_TRUSTED_PROXIES`` proxies in a
row, the one that many places from the right.
"""

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str | None:
    """The address of the client that made ``request``, as far as our own proxies vouch for it.

    ``FLOWDESK_CLIENT_IP_HEADER`` unset: ``REMOTE_ADDR``. Set: the entry the outermost of the
    ``FLOWDESK_TRUSTED_PROXIES`` proxies appended to that header. A request with fewer entries
    than that did not come through all of them, and one whose entry is not an address was not
    written by them: both fall back to ``REMOTE_ADDR``, the peer that is known for certain.
    """
    remote = request.META.get("REMOTE_ADDR") or None
    header = settings.FLOWDESK_CLIENT_IP_HEADER
    if not header:
        return remote
    value = request.META.get("HTTP_" + header.upper().replace("-", "_"), "")
    entries = [entry.strip() for entry in value.split(",")]
    trusted = settings.FLOWDESK_TRUSTED_PROXIES
    if not value.strip() or len(entries) < trusted:
        return remote
    candidate = entries[-trusted]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote


def from_this_machine(request: HttpRequest) -> bool:
    """Whether ``request`` came over a connection from this machine itself, through no proxy
    (which would connect from here on anyone's behalf): never decided by a header a client can
    write. For what is answered without a token in development (``/metrics``, ``/readyz``'s
    details)."""
    forwarded = ("X-Forwarded-For", "Forwarded", "X-Real-IP")
    if any(name in request.headers for name in forwarded):
        return False
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False
