"""Verifying Svix-signed webhooks with the ``standardwebhooks`` library.

Sohar sends ``svix-*`` headers; ``standardwebhooks`` reads only ``webhook-*`` ones, so each is
looked up under both names. A malformed signature header makes the library raise ``ValueError``
rather than its verification error, and that must be a 4xx too, never a 500.
"""

import json
from collections.abc import Mapping
from typing import Any

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

HEADER_NAMES = ("id", "timestamp", "signature")


class WebhookRejected(Exception):
    def __init__(self, reason: str, *, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


def signed_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The three signature headers under their ``webhook-*`` names, from either spelling."""
    found = {}
    for name in HEADER_NAMES:
        value = headers.get(f"svix-{name}") or headers.get(f"webhook-{name}")
        if not value:
            raise WebhookRejected(f"missing svix-{name} header")
        found[f"webhook-{name}"] = value
    return found


def verify(secret: str, body: bytes, headers: Mapping[str, str]) -> dict[str, Any]:
    """Check the signature over the raw body and the 5-minute timestamp tolerance, then parse.

    Any one valid entry of a space-separated signature header is enough (secret rotation).
    """
    standard = signed_headers(headers)
    try:
        Webhook(secret).verify(body, standard, json_parse=False)
    except WebhookVerificationError as exc:
        raise WebhookRejected(f"signature rejected: {exc}", status=401) from None
    except ValueError as exc:
        raise WebhookRejected(f"malformed signature header: {exc}") from None
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise WebhookRejected("the body is not JSON") from None
    if not isinstance(payload, dict):
        raise WebhookRejected("the body is not a JSON object")
    return payload
