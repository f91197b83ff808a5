"""Verifying Svix-signed webhooks with the ``standardwebhooks`` library.

Sohar sends ``svix-*`` headers; ``standardwebhooks`` reads only ``webhook-*`` ones, so each is
looked up under both names. A malformed signature header makes the library raise ``ValueError``
rather than its verification error, and that must be a 4xx too, never a 500.

Svix retries every answer but a 2xx, 4xx included, for about a day (flows-api.md); only the
response header ``webhook-delivery: abort-message`` stops it. A signed body that can never be
taken (not JSON, nested thousands deep) is refused with that header: its retries would bring
the same bytes eight times. A signature that fails is not: the secret may be mid-rotation.
"""

from collections.abc import Mapping
from typing import Any

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from flowspec.numbers import TooDeep, exact_loads

HEADER_NAMES = ("id", "timestamp", "signature")


# How deep a payload may nest. Sohar's bodies are flat (flows-api.md); depth only guards what
# walks the stored payload later (the admin's pretty-printing, a task's json.dumps).
PAYLOAD_DEPTH_MAX = 32


class WebhookRejected(Exception):
    def __init__(self, reason: str, *, status: int = 400, final: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        # Final: the same bytes can never be taken, so Svix is asked to stop retrying.
        self.final = final


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
        payload = exact_loads(body, max_depth=PAYLOAD_DEPTH_MAX)
    except TooDeep as exc:
        # Nested thousands deep, json.loads would have raised RecursionError: a 500.
        raise WebhookRejected(str(exc), final=True) from None
    except (ValueError, UnicodeDecodeError):
        # ValueError: not JSON, NaN or Infinity (which no database column takes as JSON), or an
        # integer of more than 4,300 digits (Python's limit on reading one).
        raise WebhookRejected("the body is not JSON", final=True) from None
    if not isinstance(payload, dict):
        raise WebhookRejected("the body is not a JSON object", final=True)
    return payload
