"""The client's address in audit rows comes from the trusted proxies' header when one is
configured, and from ``REMOTE_ADDR`` otherwise: one helper (config/client_ip.py) for every row."""

from pathlib import Path

import pytest
from django.test import Client, RequestFactory
from django.urls import reverse

from audit.models import AuditEvent
from config.client_ip import client_ip
from tests.reviewqueue.conftest import (  # noqa: F401
    clinical_queue,
    item,
    pending_run,
    prior_auth_version,
    reviewer,
)

ROOT = Path(__file__).resolve().parents[2]
PROXY = "10.0.0.2"


def address(forwarded: str | None = None) -> str | None:
    headers = {} if forwarded is None else {"HTTP_X_FORWARDED_FOR": forwarded}
    return client_ip(RequestFactory().get("/", REMOTE_ADDR=PROXY, **headers))


def test_without_a_header_setting_the_peer_is_the_client(settings):
    settings.FLOWDESK_CLIENT_IP_HEADER = None
    # A client may send the header; nobody vouches for it.
    assert address("198.51.100.7") == PROXY


@pytest.mark.parametrize(
    ("proxies", "forwarded", "expected"),
    [
        # One proxy appended what it saw; what the client wrote before it is ignored.
        (1, "203.0.113.9", "203.0.113.9"),
        (1, "1.2.3.4, 203.0.113.9", "203.0.113.9"),
        (1, "  1.2.3.4 ,203.0.113.9  ", "203.0.113.9"),
        (1, "2001:db8::1", "2001:db8::1"),
        # Two proxies: the outer one appended the client, the inner one the outer proxy.
        (2, "1.2.3.4, 203.0.113.9, 10.0.0.1", "203.0.113.9"),
        # Fewer entries than proxies: it did not come through them all; the peer is certain.
        (2, "203.0.113.9", PROXY),
        # Not an address: not written by our proxy.
        (1, "1.2.3.4, unknown", PROXY),
        (1, "1.2.3.4, 203.0.113.9:443", PROXY),
        (1, "", PROXY),
        (1, None, PROXY),
    ],
)
def test_the_trusted_proxies_entry_is_the_client(settings, proxies, forwarded, expected):
    settings.FLOWDESK_CLIENT_IP_HEADER = "X-Forwarded-For"
    settings.FLOWDESK_TRUSTED_PROXIES = proxies
    assert address(forwarded) == expected


def test_an_audit_row_names_the_client_behind_the_proxy(settings, reviewer, item):  # noqa: F811
    settings.FLOWDESK_CLIENT_IP_HEADER = "X-Forwarded-For"
    client = Client()
    client.force_login(reviewer)
    client.get(
        reverse("reviewqueue:item", args=[item.pk]),
        REMOTE_ADDR=PROXY,
        HTTP_X_FORWARDED_FOR="6.6.6.6, 198.51.100.20",
    )
    assert AuditEvent.objects.get(action="item.viewed").ip == "198.51.100.20"


def test_only_the_helper_reads_the_peer_address():
    """Every audit row (views, the intake API, sign-in and sign-out, django-axes's lockouts)
    takes the address from the helper: no module reads ``REMOTE_ADDR`` itself."""
    readers = {
        str(path.relative_to(ROOT))
        for folder in ("config", "reviewqueue", "intake", "flows_integration", "flows_engine")
        for path in (ROOT / folder).rglob("*.py")
        if '"REMOTE_ADDR"' in path.read_text()
    }
    assert readers == {"config/client_ip.py"}
