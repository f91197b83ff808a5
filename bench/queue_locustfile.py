"""Locust users for the ``queue`` scenario: staff working the queue through htmx fragments.

Run only as a subprocess by ``bench/scenarios/queue.py`` (``python -m locust -f`` this file,
headless, against gunicorn on 127.0.0.1), never imported by the harness: locust patches the
standard library with gevent when it is imported. The plan comes from the JSON file named by
``FLOWDESK_QUEUE_PLAN``: the host, each staff member's session and items, the form data, the
think time, and where to write the samples.

Each user is one staff member, already signed in (a session made by ``bench.queue_django
prepare``). One round of work, with a think time after each request:

1. ``rows``: the queue rows fragment as htmx's live refresh asks for it (``HX-Request``,
   ``X-Flowdesk-Background``), on the Clinical review queue;
2. ``claim``: ``POST /items/<pk>/claim/`` with ``HX-Request``: the item panel;
3. ``form``: ``POST /items/<pk>/form/`` with a clinical review half typed (a denial, two
   diagnosis rows): the re-rendered form;
4. ``release``: ``POST /items/<pk>/release/``: the item panel again;
5. ``ping``: ``GET /ping``, the baseline under the same load.

Every response is checked (status and a marker of the fragment); a wrong one counts as a
failure, not a sample. Samples are kept only after every user has started plus ``warmup_s``;
they are written to ``out`` at the end, exact (locust's own CSV rounds percentiles).
"""

import itertools
import json
import os
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from locust import HttpUser, between, constant, events, task

PLAN: dict[str, Any] = json.loads(Path(os.environ["FLOWDESK_QUEUE_PLAN"]).read_text())
MARKERS = {
    "rows": 'id="queue-rows"',
    "claim": 'id="item-panel"',
    "form": 'id="schema-form"',
    "release": 'id="item-panel"',
    "ping": "pong",
}

samples: dict[str, list[float]] = defaultdict(list)
failures: dict[str, int] = defaultdict(int)
first_failure: dict[str, str] = {}
window: dict[str, float] = {}
_numbers = itertools.count()


@events.spawning_complete.add_listener
def _spawned(user_count: int, **_: Any) -> None:
    window.setdefault("from", time.time() + PLAN["warmup_s"])


@events.request.add_listener
def _record(
    name: str, response_time: float, exception: BaseException | None, start_time: float, **_: Any
) -> None:
    if "from" not in window or start_time < window["from"]:
        return
    window["to"] = time.time()
    if exception is not None:
        failures[name] += 1
        first_failure.setdefault(name, f"{type(exception).__name__}: {exception}"[:300])
    else:
        samples[name].append(response_time)


@events.quitting.add_listener
def _write(**_: Any) -> None:
    Path(PLAN["out"]).write_text(
        json.dumps(
            {
                "samples_ms": samples,
                "failures": failures,
                "first_failure": first_failure,
                "window_s": window.get("to", 0) - window.get("from", 0),
            }
        )
    )


class Staff(HttpUser):
    host = PLAN["host"]
    wait_time = (
        between(PLAN["think_min_s"], PLAN["think_max_s"])
        if PLAN["think_max_s"] > 0
        else constant(0)
    )

    def on_start(self) -> None:
        me = PLAN["staff"][next(_numbers) % len(PLAN["staff"])]
        self.items = itertools.cycle(me["items"])
        # No domain: requests then sends them to 127.0.0.1 (an IP has no cookie domain).
        self.client.cookies.set("sessionid", me["session"])
        self.client.cookies.set("csrftoken", PLAN["csrf"])
        self.htmx = {"HX-Request": "true", "X-CSRFToken": PLAN["csrf"]}
        self.rows_path = f"/?queue={PLAN['queue']}&page=1&since={PLAN['since']}"

    def _call(self, name: str, method: str, path: str, **kwargs: Any) -> None:
        with self.client.request(
            method, path, name=name, catch_response=True, allow_redirects=False, **kwargs
        ) as response:
            if response.status_code != 200 or MARKERS[name] not in response.text:
                response.failure(f"{response.status_code} {response.text[:200]!r}")

    @task
    def work(self) -> None:
        pk = next(self.items)
        background = {**self.htmx, "X-Flowdesk-Background": "1"}
        self._call("rows", "GET", self.rows_path, headers=background)
        self.wait()
        self._call("claim", "POST", f"/items/{pk}/claim/", headers=self.htmx)
        self.wait()
        self._call("form", "POST", f"/items/{pk}/form/", headers=self.htmx, data=PLAN["form_data"])
        self.wait()
        self._call("release", "POST", f"/items/{pk}/release/", headers=self.htmx)
        self.wait()
        self._call("ping", "GET", "/ping")
