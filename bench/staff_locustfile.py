"""Locust users for the ``staff`` scenario: staff working the Eligibility queue from sign-in on.

Run only as a subprocess by ``bench/scenarios/staff.py`` (``python -m locust -f`` this file,
headless, against gunicorn on 127.0.0.1), never imported by the harness: locust patches the
standard library with gevent. The plan comes from the JSON file named by ``FLOWDESK_STAFF_PLAN``.

Each ``Staff`` user signs in with its own account (the login form, a real password), then loops,
with a think time after each step:

1. ``queue``: ``GET /``, the queue page;
2. ``get_next``: ``POST /next/`` with ``HX-Request`` (the "Get next" button): claims the most
   urgent item and answers ``HX-Redirect: /items/<pk>/``; an empty queue redirects to ``/``;
3. ``item``: ``GET /items/<pk>/``, the whole item page with its form;
4. ``autosave``: ``POST /items/<pk>/draft/`` as the page's debounced autosave sends it, twice
   (half typed, then the whole member ID);
5. ``submit``: ``POST /items/<pk>/submit/`` with ``HX-Request``: the item panel, "sending".

Every member ID is unique (``S`` + user + count), so the engine's record of what it applied can
be compared with what Flowdesk accepted. One ``Prober`` user asks ``GET /ping`` once a second:
the baseline under the same load. Samples are kept after every user has started plus
``warmup_s`` (sign-in's from the start); errors are counted over the whole run.
"""

import itertools
import json
import os
import re
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from locust import HttpUser, between, constant, events, task

PLAN: dict[str, Any] = json.loads(Path(os.environ["FLOWDESK_STAFF_PLAN"]).read_text())
ITEM_URL = re.compile(r"^/items/(\d+)/$")

samples: dict[str, list[float]] = defaultdict(list)
failures: dict[str, int] = defaultdict(int)  # whole run
first_failure: dict[str, str] = {}
statuses: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
accepted: list[dict[str, Any]] = []  # submissions Flowdesk answered as taken
counts: dict[str, int] = defaultdict(int)
window: dict[str, float] = {}
_numbers = itertools.count()


@events.spawning_complete.add_listener
def _spawned(user_count: int, **_: Any) -> None:
    window.setdefault("from", time.time() + PLAN["warmup_s"])


@events.request.add_listener
def _record(
    name: str,
    response_time: float,
    exception: BaseException | None,
    start_time: float,
    response: Any = None,
    **_: Any,
) -> None:
    code = getattr(response, "status_code", 0) or 0
    statuses[name][str(code)] += 1
    if exception is not None:
        failures[name] += 1
        first_failure.setdefault(name, f"{type(exception).__name__}: {exception}"[:300])
        return
    if name == "sign_in" or ("from" in window and start_time >= window["from"]):
        window["to"] = time.time()
        samples[name].append(response_time)


@events.quitting.add_listener
def _write(**_: Any) -> None:
    Path(PLAN["out"]).write_text(
        json.dumps(
            {
                "samples_ms": samples,
                "failures": failures,
                "first_failure": first_failure,
                "statuses": statuses,
                "accepted": accepted,
                "counts": counts,
                "window_s": window.get("to", 0) - window.get("from", 0),
            }
        )
    )


def _why(response: Any) -> str:
    """A failure's text: the status and body, or (no answer: status 0) the client's error."""
    if not response.status_code:
        return f"no answer: {response.error!r}"[:300]
    return f"{response.status_code} {response.text[:200]!r}"


class Prober(HttpUser):
    """``GET /ping`` at a low rate, beside the staff."""

    fixed_count = 1
    host = PLAN["host"]
    wait_time = constant(PLAN["ping_every_s"])

    @task
    def ping(self) -> None:
        with self.client.get("/ping", name="ping", catch_response=True) as response:
            if response.status_code != 200 or "pong" not in response.text:
                response.failure(_why(response))


class Staff(HttpUser):
    host = PLAN["host"]
    wait_time = between(PLAN["think_min_s"], PLAN["think_max_s"])

    def on_start(self) -> None:
        self.number = next(_numbers)
        self.username = PLAN["users"][self.number % len(PLAN["users"])]
        self.submitted = itertools.count(1)
        self.page_load = f"u{self.number}-{int(time.time())}"
        self.readings = itertools.count(1)
        self.client.get("/accounts/login/", name="sign_in_page")
        csrf = self.client.cookies.get("csrftoken", "")
        with self.client.post(
            "/accounts/login/",
            name="sign_in",
            data={"username": self.username, "password": PLAN["password"]},
            headers={"X-CSRFToken": csrf, "Referer": f"{PLAN['host']}/accounts/login/"},
            allow_redirects=False,
            catch_response=True,
        ) as response:
            if response.status_code != 302 or "sessionid" not in self.client.cookies:
                response.failure(_why(response))
        self.htmx = {"HX-Request": "true", "X-CSRFToken": self.client.cookies.get("csrftoken", "")}

    def _call(self, name: str, method: str, path: str, mark: str, **kwargs: Any) -> Any:
        with self.client.request(
            method, path, name=name, catch_response=True, allow_redirects=False, **kwargs
        ) as response:
            if response.status_code != 200 or mark not in response.text:
                response.failure(_why(response))
                return None
            return response

    def _fields(self, member_id: str) -> dict[str, str]:
        return {
            "~form": "1",
            "~reading": f"{self.page_load}:{next(self.readings)}",
            "memberId": member_id,
        }

    @task
    def work(self) -> None:
        self._call("queue", "GET", "/", 'id="queue-rows"')
        self.wait()
        with self.client.post(
            "/next/", name="get_next", headers=self.htmx, catch_response=True,
            allow_redirects=False,
        ) as response:  # fmt: skip
            target = response.headers.get("HX-Redirect", "")
            if response.status_code != 200 or not target:
                response.failure(_why(response))
                return
        found = ITEM_URL.match(target)
        if found is None:  # nothing left to take: the queue page says so
            counts["empty"] += 1
            return
        pk = found[1]
        if self._call("item", "GET", target, 'id="review-form"') is None:
            return
        self.wait()  # reading the Run's context
        member_id = f"S{self.number:03d}{next(self.submitted):05d}"
        saved = "Draft saved"
        draft = f"/items/{pk}/draft/"
        self._call("autosave", "POST", draft, saved, headers=self.htmx,
                   data=self._fields(member_id[:4]))  # fmt: skip
        self.wait()  # typing the rest
        self._call("autosave", "POST", draft, saved, headers=self.htmx,
                   data=self._fields(member_id))  # fmt: skip
        self.wait()
        answered = self._call(
            "submit", "POST", f"/items/{pk}/submit/", 'id="item-panel"',
            headers=self.htmx, data=self._fields(member_id),
        )  # fmt: skip
        if answered is not None:
            accepted.append({"item": int(pk), "memberId": member_id, "user": self.username})
        counts["cycles"] += 1
