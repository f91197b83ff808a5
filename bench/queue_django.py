"""The ``queue`` scenario's in-process side: a Django process of its own, in the world's
environment (its database), run as ``python -m bench.queue_django <command> <spec> <out>``.

``prepare``: the benchmark's staff (``bench-staff-N``, in the demo reviewer alice's groups),
    a signed-in session for each of them and for alice and sam (Django's ``force_login``, so no
    password hashing lands in a measurement), and the items each staff member works on.
``queries``: the queue view through Django's test client (all middleware, the real templates)
    on the same dataset: queries per page at several page sizes (``selectors.PAGE_SIZE``
    patched), each query's own time, ``EXPLAIN (ANALYZE, BUFFERS)`` of every query of the
    review items, and a cProfile of the default view.

The harness never imports Django; only this module, in its own process, does.
"""

import cProfile
import io
import json
import os
import pstats
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

STAFF_PREFIX = "bench-staff-"
PAGE_SIZES = (10, 50, 200)
ROW_MARK = "<tr data-href="
# A clinical review half typed (a denial, two diagnosis rows), as the form re-render posts it;
# the locust users post the same (the scenario hands it to them in their plan).
CLINICAL_DRAFT = {
    "~form": "1",  # what every rendered form sends with its fields (schema_forms.form.FIELDS)
    "decision": "deny",
    "denialReason": "insufficient-documentation",
    "diagnosisCodes~rows": "2",
    "diagnosisCodes.0.code": "M17.11",
    "diagnosisCodes.0.primary": "on",
    "diagnosisCodes.1.code": "M25.561",
    "criteria.guideline": "interqual",
    "reviewer.name": "Bench Reviewer",
    "reviewer.credential": "RN",
}


class _Timer:
    """Each statement's round trip on this thread's connection, by ``perf_counter``
    (``CaptureQueriesContext`` rounds its times to the millisecond)."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, str]] = []

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        began = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.calls.append(((time.perf_counter() - began) * 1000, sql))


def _setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


# --- prepare ---------------------------------------------------------------------------------


def prepare(spec: dict[str, Any]) -> dict[str, Any]:
    from django.contrib.auth import get_user_model
    from django.test import Client

    from reviewqueue.models import ItemStatus, Queue, ReviewItem

    User = get_user_model()
    alice = User.objects.get(username="alice")
    groups = list(alice.groups.all())
    staff = []
    for n in range(spec["staff"]):
        user, _ = User.objects.get_or_create(
            username=f"{STAFF_PREFIX}{n}", defaults={"first_name": f"Staff {n}"}
        )
        user.groups.set(groups)
        staff.append(user)

    def session(user: Any) -> str:
        client = Client(HTTP_HOST="127.0.0.1")
        client.force_login(user)
        return client.cookies["sessionid"].value

    clinical = Queue.objects.get(name="Clinical review")
    eligibility = Queue.objects.get(name="Eligibility")
    per = spec["items_per_staff"]
    # Open clinical-review items nobody holds: the largest form, with conditionals and arrays.
    pool = list(
        ReviewItem.objects.filter(
            queue=clinical, state_id="clinical-review", status=ItemStatus.OPEN
        )
        .order_by("pk")
        .values_list("pk", flat=True)[: per * len(staff) + 1]
    )
    if len(pool) < per * len(staff) + 1:
        raise SystemExit(f"only {len(pool)} open clinical-review items for the staff")
    return {
        "staff": [
            {"username": u.username, "session": session(u), "items": pool[i * per : (i + 1) * per]}
            for i, u in enumerate(staff)
        ],
        "reviewer": {"username": "alice", "session": session(alice)},
        "supervisor": {"username": "sam", "session": session(User.objects.get(username="sam"))},
        "queues": {"clinical": clinical.pk, "eligibility": eligibility.pk},
        # For the in-process fragments (queries): an item no locust user works on.
        "spare_item": pool[-1],
    }


# --- queries ---------------------------------------------------------------------------------


def _views(spec: dict[str, Any]) -> dict[str, tuple[str, str, dict[str, str]]]:
    """name -> (user, path, extra headers); the same views the HTTP phase measures."""
    htmx = {"HTTP_HX_REQUEST": "true", "HTTP_X_FLOWDESK_BACKGROUND": "1"}
    return {
        "default": ("alice", "/", {}),
        "filtered": ("alice", f"/?queue={spec['queues']['eligibility']}&overdue=1", {}),
        # The term is posted and the page's URL names it by a token (reviewqueue/searches.py):
        # queries() swaps in the URL the post redirects to.
        "search": ("alice", "/", {}),
        "page50": ("alice", "/?page=50", {}),
        "rows": ("alice", f"/?page=1&since={quote(spec['since'])}", htmx),
        "default_supervisor": ("sam", "/", {}),
    }


def queries(spec: dict[str, Any]) -> dict[str, Any]:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    from reviewqueue import selectors

    User = get_user_model()
    clients: dict[str, Client] = {}
    for username in ("alice", "sam"):
        client = Client(HTTP_HOST="127.0.0.1")
        client.force_login(User.objects.get(username=username))
        clients[username] = client
    views = _views(spec)
    searched = clients["alice"].post("/", {"q": spec["search"]})["Location"]
    views["search"] = ("alice", searched, {})

    def fetch(name: str) -> tuple[str, list[dict[str, Any]], float]:
        """The view's body, its queries (SQL and time in ms) and its wall time in ms."""
        username, path, headers = views[name]
        response, queries, wall = _measured(
            connection,
            lambda: clients[username].get(path, **headers),  # type: ignore[arg-type]
        )
        if response.status_code != 200:
            raise SystemExit(f"{name}: {path} answered {response.status_code}")
        return response.content.decode(), queries, wall

    # 1. Queries per page, at several page sizes.
    original = selectors.PAGE_SIZE
    per_size: dict[str, dict[str, Any]] = {name: {} for name in views}
    try:
        for size in PAGE_SIZES:
            selectors.PAGE_SIZE = size
            for name in views:
                fetch(name)  # warm: per-process caches (content types, permissions)
                body, captured, _ = fetch(name)
                per_size[name][str(size)] = {
                    "queries": len(_counted(captured)),
                    "rows": body.count(ROW_MARK),
                    "statements": [_shorten(q["sql"]) for q in captured],
                }
    finally:
        selectors.PAGE_SIZE = original

    # 2. Time per view in-process, and each query's share (page size as shipped).
    timing: dict[str, Any] = {}
    explained: dict[str, Any] = {}
    for name in views:
        walls, sql_ms, by_query = [], [], []
        for _ in range(spec["repeats"]):
            _, captured, wall = fetch(name)
            walls.append(wall)
            captured = _counted(captured)
            sql_ms.append(sum(q["ms"] for q in captured))
            by_query.append([(q["ms"], _shorten(q["sql"])) for q in captured])
        slowest = sorted(
            (
                (statistics.median(run[i][0] for run in by_query), by_query[0][i][1])
                for i in range(len(by_query[0]))
            ),
            reverse=True,
        )
        timing[name] = {
            "wall_ms_p50": round(statistics.median(walls), 2),
            "sql_ms_p50": round(statistics.median(sql_ms), 2),
            "queries": len(by_query[0]),
            "slowest_queries_ms_p50": [[round(ms, 2), text] for ms, text in slowest[:6]],
        }
        # 3. EXPLAIN ANALYZE each read of the items table.
        _, captured, _ = fetch(name)
        explained[name] = [
            _explain(connection, q["sql"])
            for q in captured
            if '"reviewqueue_reviewitem"' in q["sql"] and q["sql"].lstrip().startswith("SELECT")
        ]

    # 4. The htmx fragments, one at a time, as one staff member works an item.
    fragments = _fragments(spec)

    # 5. What-if: the indexes the report suggests, built on this throwaway copy only.
    what_if = _what_if(connection, spec, fetch, views)

    # 6. Where a default view's time goes, by function.
    return {
        "page_sizes": list(PAGE_SIZES),
        "per_page_size": per_size,
        "timing": timing,
        "explain": explained,
        "fragments": fragments,
        "what_if": what_if,
        "profile": _profile(lambda: fetch("default"), spec["profile_repeats"]),
        "profile_repeats": spec["profile_repeats"],
    }


def _profile(call: Any, repeats: int) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(repeats):
        call()
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(40)
    stats.sort_stats("tottime").print_stats(25)
    return _trim_profile(out.getvalue())


def _fragments(spec: dict[str, Any]) -> dict[str, Any]:
    """claim, form, release and the rows refresh of one item, through the test client as one
    of the benchmark's staff: time, queries and the slowest ones; and a profile of a cycle."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(get_user_model().objects.get(username=f"{STAFF_PREFIX}0"))
    pk = spec["fragment_item"]
    htmx = {"HTTP_HX_REQUEST": "true"}
    rows = f"/?queue={spec['queues']['clinical']}&page=1&since={quote(spec['since'])}"
    steps = [
        ("rows", "get", rows, None, {**htmx, "HTTP_X_FLOWDESK_BACKGROUND": "1"}),
        ("claim", "post", f"/items/{pk}/claim/", None, htmx),
        ("form", "post", f"/items/{pk}/form/", CLINICAL_DRAFT, htmx),
        ("release", "post", f"/items/{pk}/release/", None, htmx),
    ]

    def call(name: str, method: str, path: str, data: Any, headers: dict) -> tuple:
        response, queries, wall = _measured(
            connection, lambda: getattr(client, method)(path, data=data, **headers)
        )
        if response.status_code != 200:
            raise SystemExit(f"{name}: {path} answered {response.status_code}")
        queries = _counted(queries)
        return wall, len(queries), [(q["ms"], q["sql"]) for q in queries]

    found: dict[str, Any] = {}
    samples: dict[str, list[tuple]] = {name: [] for name, *_ in steps}
    for step in steps:  # warm
        call(*step)
    for _ in range(spec["repeats"]):
        for step in steps:
            samples[step[0]].append(call(*step))
    for name, runs in samples.items():
        # Runs with the usual statements (a lease renewal or a session write may add one).
        usual = statistics.mode(n for _, n, _ in runs)
        counts = [n for _, n, _ in runs]
        runs = [r for r in runs if r[1] == usual]
        per_query = [[ms for ms, _ in calls] for _, _, calls in runs]
        texts = [_shorten(sql) for _, sql in runs[0][2]]
        medians = [statistics.median(r[i] for r in per_query) for i in range(len(texts))]
        slowest = sorted(zip(medians, texts, strict=True), reverse=True)[:6]
        found[name] = {
            "wall_ms_p50": round(statistics.median(w for w, _, _ in runs), 2),
            "sql_ms_p50": round(statistics.median(sum(q) for q in per_query), 2),
            "queries": usual,
            "queries_min_max": [min(counts), max(counts)],
            "slowest_queries_ms_p50": [[round(ms, 2), text] for ms, text in slowest],
            "statements": texts,
        }

    def cycle() -> None:
        for step in steps[1:]:
            call(*step)

    found["profile_claim_form_release"] = _profile(cycle, spec["profile_repeats"])
    return found


# Logged by Django but not sent through execute wrappers (psycopg sends BEGIN by itself).
_CONTROL = {"BEGIN", "COMMIT", "ROLLBACK"}


def _measured(connection: Any, call: Any) -> tuple[Any, list[dict[str, Any]], float]:
    """Run ``call``; its result, each statement it sent (as executed, with its time in ms,
    BEGIN/COMMIT left out) and its wall time in ms. Counted by ``CaptureQueriesContext``,
    timed by an execute wrapper (the context's times are rounded to the millisecond)."""
    from django.test.utils import CaptureQueriesContext

    timer = _Timer()
    with connection.execute_wrapper(timer), CaptureQueriesContext(connection) as captured:
        began = time.perf_counter()
        result = call()
        wall = (time.perf_counter() - began) * 1000
    statements = [
        q["sql"] for q in captured.captured_queries if q["sql"].strip().upper() not in _CONTROL
    ]
    if len(statements) != len(timer.calls):
        raise SystemExit(f"{len(statements)} statements captured but {len(timer.calls)} timed")
    queries = [{"sql": sql, "ms": ms} for sql, (ms, _) in zip(statements, timer.calls, strict=True)]
    return result, queries, wall


def _counted(queries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What "queries per page" counts: not the session's write, which the session-limits
    middleware makes at most once a minute per session, whatever the page."""
    return [q for q in queries if not q["sql"].startswith('UPDATE "django_session"')]


def _explain(connection: Any, query: str) -> dict[str, Any]:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + query)
        plan = cursor.fetchone()[0]
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS, TIMING OFF, SUMMARY OFF) " + query)
        text = "\n".join(row[0] for row in cursor.fetchall())
    if isinstance(plan, str):
        plan = json.loads(plan)
    top = plan[0]
    nodes: list[dict[str, Any]] = []

    def walk(node: dict[str, Any]) -> None:
        nodes.append(node)
        for child in node.get("Plans", []):
            walk(child)

    walk(top["Plan"])
    return {
        "query": _shorten(query, 400),
        "execution_ms": round(top.get("Execution Time", 0.0), 2),
        "planning_ms": round(top.get("Planning Time", 0.0), 2),
        "indexes": sorted({n["Index Name"] for n in nodes if "Index Name" in n}),
        "nodes": [n["Node Type"] for n in nodes],
        "seq_scans": sorted({n["Relation Name"] for n in nodes if n["Node Type"] == "Seq Scan"}),
        "rows_removed_by_filter": sum(int(n.get("Rows Removed by Filter", 0)) for n in nodes),
        "sorts": [
            {"method": n.get("Sort Method"), "key": n.get("Sort Key")}
            for n in nodes
            if n["Node Type"] == "Sort"
        ],
        "plan": text,
    }


# Candidate fixes, tried on the clone: (name, DDL to create, DDL to drop).
WHAT_IF_INDEXES = [
    (
        "workable_by_urgency",
        "CREATE INDEX bench_whatif_urgency ON reviewqueue_reviewitem"
        " (priority DESC, due_at, id) WHERE status IN ('claimed', 'open')",
        "DROP INDEX bench_whatif_urgency",
    ),
    (
        "workable_opened_at",
        "CREATE INDEX bench_whatif_opened ON reviewqueue_reviewitem (opened_at)"
        " WHERE status IN ('claimed', 'open')",
        "DROP INDEX bench_whatif_opened",
    ),
    (
        "patient_name_trigram",
        "CREATE EXTENSION IF NOT EXISTS pg_trgm;"
        " CREATE INDEX bench_whatif_trgm ON reviewqueue_reviewitem"
        " USING gin (upper(patient_name) gin_trgm_ops) WHERE status IN ('claimed', 'open')",
        "DROP INDEX bench_whatif_trgm",
    ),
]


def _what_if(connection: Any, spec: dict[str, Any], fetch: Any, views: dict) -> dict[str, Any]:
    """Each view's in-process time and its items queries' execution times with all candidate
    indexes present (on this copy of the database, dropped again afterwards)."""
    created, failed = [], {}
    for name, create, _drop in WHAT_IF_INDEXES:
        try:
            with connection.cursor() as cursor:
                cursor.execute(create)
            created.append(name)
        except Exception as exc:  # pg_trgm may not be installable: report, go on
            failed[name] = f"{type(exc).__name__}: {exc}"
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE reviewqueue_reviewitem")
    found: dict[str, Any] = {"indexes": created, "failed": failed, "views": {}, "deferred": {}}

    def measure(view: str) -> dict[str, Any]:
        walls, sql_ms = [], []
        for _ in range(spec["repeats"]):
            _, captured, wall = fetch(view)
            walls.append(wall)
            sql_ms.append(sum(q["ms"] for q in _counted(captured)))
        _, captured, _ = fetch(view)
        plans = [
            _explain(connection, q["sql"])
            for q in captured
            if '"reviewqueue_reviewitem"' in q["sql"] and q["sql"].lstrip().startswith("SELECT")
        ]
        return {
            "wall_ms_p50": round(statistics.median(walls), 2),
            "sql_ms_p50": round(statistics.median(sql_ms), 2),
            "items_queries": [
                {k: p[k] for k in ("execution_ms", "indexes", "seq_scans", "query")} for p in plans
            ],
        }

    from reviewqueue import selectors

    filtered = selectors.items_matching
    try:
        for view in views:
            found["views"][view] = measure(view)
        # ...and the rows without their version's template document and source (6-21 kB of
        # JSON and YAML per row that the queue page never shows), as ``defer()`` would load them.
        selectors.items_matching = lambda *args, **kwargs: filtered(*args, **kwargs).defer(
            "version__document", "version__source"
        )
        for view in views:
            found["deferred"][view] = measure(view)
    finally:
        selectors.items_matching = filtered
        for name, _create, drop in WHAT_IF_INDEXES:
            if name in created:
                with connection.cursor() as cursor:
                    cursor.execute(drop)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE reviewqueue_reviewitem")
    return found


def _shorten(query: str, limit: int = 240) -> str:
    text = re.sub(r"\s+", " ", query).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _trim_profile(text: str) -> str:
    lines = [line.rstrip() for line in text.splitlines()]
    keep = [line for line in lines if line and not line.startswith("   Ordered by")]
    return "\n".join(keep)


COMMANDS = {"prepare": prepare, "queries": queries}


def main(argv: list[str]) -> None:
    command, spec_path, out_path = argv
    _setup()
    spec = json.loads(Path(spec_path).read_text())
    result = COMMANDS[command](spec)
    Path(out_path).write_text(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main(sys.argv[1:])
