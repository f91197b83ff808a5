"""The image's HEALTHCHECK: GET /healthz from inside the container; exit 0 when it answers 200.

It asks ``127.0.0.1:$PORT`` but names a host from ``ALLOWED_HOSTS``: production's list names the
site (``flowdesk.example.org``), not the container's own address, and Django answers 400 to any
other Host header. ``/healthz`` is exempt from the HTTPS redirect (config/settings.py), so plain
HTTP from inside works behind a proxy that terminates TLS. Standard library only: it runs every
30 seconds, and must not import Django to do it.
"""

import os
import sys
import urllib.error
import urllib.request


def host_to_ask() -> str:
    """The first host ``ALLOWED_HOSTS`` names: ``.example.org`` allows ``example.org``; ``*``
    allows anything."""
    for host in (os.environ.get("ALLOWED_HOSTS") or "").split(","):
        host = host.strip().lstrip(".")
        if host and "*" not in host:
            return host
    return "localhost"


def main() -> int:
    port = os.environ.get("PORT") or "8000"
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/healthz", headers={"Host": host_to_ask()}
    )
    try:
        with urllib.request.urlopen(request, timeout=4) as response:
            if response.status == 200:
                return 0
            print(f"unhealthy: /healthz answered {response.status}", file=sys.stderr)
    except (urllib.error.URLError, OSError) as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
