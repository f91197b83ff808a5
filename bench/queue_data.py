"""The ``queue`` scenario's dataset: a million mirrored Runs and their review items, generated once
in PostgreSQL and kept as a cached database that each run clones.

Generating 1,000,000 ``FlowRun`` rows, 200,000 items and their audit rows takes minutes; cloning a
database (``CREATE DATABASE ... TEMPLATE``, a file copy) takes seconds. So the dataset lives in
``<name>_cache_full`` (or ``_cache_quick``), built on first use by the ``queue`` scenario inside a
world of its own (migrated and seeded with ``load_demo`` like any world, with the mirror's templates
imported from the engine by ``load_templates``), and labelled with a fingerprint: the generator's
sizes, this file, the migrations and the demo content. A cache whose label differs from what the
code would build now is dropped and built again.

Rows are generated server-side, ``INSERT ... SELECT`` over ``generate_series``, so nothing of the
million rows crosses the wire. Everything is deterministic: Run ids are ``md5('bench-run-' ||
i)::uuid``, names and payers are picked from fixed lists by ``i``.

This module never imports Django (the harness does not); the world's processes do.
"""

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from bench.world import BASE_DIR

# Bump to rebuild every cached dataset (any edit of this file does too: it is fingerprinted).
GENERATOR_VERSION = 1


@dataclass(frozen=True)
class DataSizes:
    runs: int  # mirrored FlowRun rows in all
    open_items: int  # workable items (open, one in CLAIMED_EVERY claimed), one PENDING Run each
    closed_items: int  # items of earlier pauses, resumed; their Runs are COMPLETE


FULL_DATA = DataSizes(runs=1_000_000, open_items=100_000, closed_items=100_000)
QUICK_DATA = DataSizes(runs=50_000, open_items=5_000, closed_items=5_000)
CLAIMED_EVERY = 20  # one workable item in 20 is claimed (by a demo reviewer, lease long gone)
URGENT_EVERY = 10  # one in 10 has its route's priority raised by 20 (e.g. from $input.urgency)
OPEN_SPREAD_HOURS = 48  # workable items opened over the 48 hours before the build
HISTORY_DAYS = 365  # other Runs were created over the year before the build


# Where Runs pause, with weights: (template id, version number, callback state, weight).
PAUSES: list[tuple[str, int, str, int]] = [
    ("coverage-check", 1, "collect-member-id", 25),
    ("coverage-check", 2, "collect-member-id", 20),
    ("coverage-check", 2, "coverage-inactive", 5),
    ("prior-authorization", 1, "clinical-review", 25),
    ("prior-authorization", 1, "supervisor-signoff", 5),
    ("prior-authorization", 1, "coverage-problem", 3),
    ("billing-write-off", 1, "request-write-off", 12),
    ("billing-write-off", 1, "manager-approval", 5),
]

FIRST_NAMES = str.split(
    "Ada Alan Amara Ana Ari Ben Carla Chen Dana Dev Elena Emil Farah Femi Grace Hana Hugo Ines "
    "Ivan Jon Kai Lara Leo Lina Luis Maya Mei Nadia Noah Omar Paula Priya Rosa Sam Sara Tariq "
    "Uma Vera Wei Yara Zoe"
)
LAST_NAMES = str.split(
    "Abbott Acosta Adeyemi Alvarez Andersen Arslan Baker Banerjee Barros Becker Bianchi Boateng "
    "Bondarenko Brennan Cabrera Campbell Castillo Chandra Cohen Costa Dahl Davies Delgado Diallo "
    "Dimitrov Dubois Duarte Eriksen Estrada Farouk Ferreira Fischer Fontaine Garcia Gallagher "
    "Ghosh Goldberg Gomez Gonzalez Gupta Haddad Hansen Hartmann Herrera Hoang Horvat Hughes "
    "Ibrahim Ivanova Jansen Jimenez Johansson Kamara Kaplan Karimi Kaur Keller Khan Kim Kowalski "
    "Kruger Kuznetsov Larsen Laurent Lee Lindqvist Lopez Lucas Madsen Mahmoud Malik Marino "
    "Martin Mbeki Medina Mendes Meyer Molina Moreau Morris Murphy Nakamura Navarro Nguyen "
    "Nielsen Novak Nowak Obi Okafor Oliveira Olsen Ortega Osei Ozturk Park Patel Pereira Petrov "
    "Popescu Quinn Rahman Ramos Reyes Ribeiro Rossi Ruiz Saito Salazar Santos Schmidt Schneider "
    "Sharma Silva Singh Sokolov Sorensen Suzuki Tanaka Taylor Torres Tran Vargas Varga Vasquez "
    "Vogel Wagner Walsh Weber Wojcik Yamamoto Yilmaz Young Zhang Zimmerman"
)
# The queue scenario searches for this name: one workable item in len(LAST_NAMES) has it.
SEARCH_NAME = "Okafor"
PAYERS = ["60054", "62308", "87726", "61101", "47198"]


def fingerprint(sizes: DataSizes) -> str:
    """What the cached dataset depends on; a different value means build it again."""
    digest = hashlib.sha256()
    digest.update(json.dumps({"generator": GENERATOR_VERSION, "sizes": asdict(sizes)}).encode())
    paths = [Path(__file__)]
    for app in ("flows_integration", "reviewqueue", "flows_engine"):
        paths += sorted((BASE_DIR / app / "migrations").glob("*.py"))
    paths += sorted((BASE_DIR / "flows_engine" / "demo").rglob("*.yaml"))
    paths.append(BASE_DIR / "reviewqueue" / "demo.py")
    for path in paths:
        digest.update(str(path.relative_to(BASE_DIR)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


# --- Databases -------------------------------------------------------------------------------


def with_name(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def db_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def _maintenance(url: str) -> psycopg.Connection:
    return psycopg.connect(with_name(url, "postgres"), autocommit=True)


def cache_label(cache_url: str) -> dict[str, Any] | None:
    """The label of a cached dataset (fingerprint, sizes, when and how fast it was built), or
    None when there is none or it was left half-built."""
    with _maintenance(cache_url) as conn:
        row = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
            (db_name(cache_url),),
        ).fetchone()
    if row is None or not row[0]:
        return None
    try:
        label = json.loads(row[0])
    except ValueError:
        return None
    return label if isinstance(label, dict) else None


def database_drop(url: str) -> None:
    with _maintenance(url) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db_name(url)))
        )


def database_create(url: str, *, template: str | None = None) -> None:
    """Create the database (dropping any old one), empty or as a copy of ``template``'s."""
    database_drop(url)
    with _maintenance(url) as conn:
        name = sql.Identifier(db_name(url))
        if template is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(name))
            return
        # Nobody may be connected to a template; the cache is ours alone.
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            (db_name(template),),
        )
        # FILE_COPY: one checkpoint and a copy of the files, much faster than WAL-logging
        # a gigabyte page by page (PostgreSQL 15's default).
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY").format(
                name, sql.Identifier(db_name(template))
            )
        )


def label_set(cache_url: str, label: dict[str, Any]) -> None:
    with _maintenance(cache_url) as conn:
        conn.execute(
            sql.SQL("COMMENT ON DATABASE {} IS {}").format(
                sql.Identifier(db_name(cache_url)), sql.Literal(json.dumps(label))
            )
        )


def database_size_mb(url: str) -> float:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    return round(row[0] / 1e6, 1) if row else 0.0


# --- Generation ------------------------------------------------------------------------------


def generate(url: str, sizes: DataSizes) -> dict[str, float]:
    """Fill a migrated, seeded database (``load_demo`` and ``load_templates`` have run) with
    the dataset; return seconds per step."""
    if sizes.open_items + sizes.closed_items > sizes.runs:
        raise ValueError("every item needs a Run of its own")
    timings: dict[str, float] = {}
    with psycopg.connect(url, autocommit=True) as conn:

        def step(name: str, statement: str | sql.Composed, params: Any = None) -> None:
            began = time.monotonic()
            conn.execute(statement, params)
            timings[name] = round(time.monotonic() - began, 2)

        _pauses(conn)
        built = datetime.now(UTC)
        names = {"first": FIRST_NAMES, "last": LAST_NAMES, "payers": PAYERS}
        params = {
            **names,
            "built": built,
            "runs": sizes.runs,
            "open": sizes.open_items,
            "closed": sizes.closed_items,
            "spread": f"{OPEN_SPREAD_HOURS} hours",
            "history": f"{HISTORY_DAYS} days",
        }
        step("flowrun", _RUNS_SQL, params)
        step(
            "items_open",
            _ITEMS_OPEN_SQL,
            {**params, "claimed_every": CLAIMED_EVERY, "urgent_every": URGENT_EVERY},
        )
        step("items_closed", _ITEMS_CLOSED_SQL, params)
        step("audit", _AUDIT_SQL)
        conn.execute("DROP TABLE bench_pause")
        # Ours alone: the engine's webhook endpoints point at the world that built the cache.
        # load_demo registers the right ones in each world cloned from it.
        step("endpoints", "DELETE FROM flows_engine_webhookendpoint")
        for table in (
            "flows_integration_flowrun",
            "reviewqueue_reviewitem",
            "audit_auditevent",
        ):
            step(
                f"vacuum_{table}",
                sql.SQL("VACUUM (ANALYZE, FREEZE) {}").format(sql.Identifier(table)),
            )
        step("analyze", "ANALYZE")
    return timings


def _pauses(conn: psycopg.Connection) -> None:
    """``bench_pause``: one row per unit of weight, each with its template, version, state, the
    queue its route names, the route's priority and the queue's SLA."""
    conn.execute(
        "CREATE TABLE bench_pause (k int PRIMARY KEY, template_key text, template_id bigint,"
        " version_id bigint, state_id text, queue_id bigint, priority int, sla interval)"
    )
    k = 0
    for template_key, number, state_id, weight in PAUSES:
        row = conn.execute(
            "SELECT t.id, v.id, q.id, r.priority, q.sla"
            " FROM flows_integration_flowtemplate t"
            " JOIN flows_integration_templateversion v ON v.template_id = t.id AND v.number = %s"
            " JOIN reviewqueue_route r ON r.template_id = t.id AND r.state_id = ''"
            " JOIN reviewqueue_queue q ON q.id = r.queue_id"
            " WHERE t.template_id = %s",
            (number, template_key),
        ).fetchone()
        if row is None:
            raise RuntimeError(
                f"{template_key} v{number} or its route is missing: did load_demo and "
                "load_templates run?"
            )
        for _ in range(weight):
            conn.execute(
                "INSERT INTO bench_pause VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                (k, template_key, *row[:2], state_id, *row[2:]),
            )
            k += 1


# Row i's attributes, shared by the statements below: its pause, names and timestamps.
_ROW = """
    p.*,
    (%(first)s::text[])[(1 + (i * 7) %% cardinality(%(first)s::text[]))::int] AS first_name,
    (%(last)s::text[])[(1 + (i / 7) %% cardinality(%(last)s::text[]))::int] AS last_name,
    (%(payers)s::text[])[(1 + i %% cardinality(%(payers)s::text[]))::int] AS payer,
    md5('bench-run-' || i)::uuid AS flow_run_id,
    CASE WHEN i <= %(open)s
        THEN %(built)s::timestamptz - %(spread)s::interval * ((i * 7919) %% 10007) / 10007.0
        ELSE %(built)s::timestamptz - %(history)s::interval * ((i * 7919) %% 10007) / 10007.0
    END AS opened
"""

_RUNS_SQL = f"""
INSERT INTO flows_integration_flowrun (
    flow_run_id, template_id, version_id, status, state_id, state_unresolved, input_data,
    output, state_results, errors, remote_created_at, remote_updated_at, created_at, synced_at,
    sync_error)
SELECT
    flow_run_id, template_id, version_id,
    CASE
        WHEN i <= %(open)s THEN 'PENDING'
        WHEN i <= %(open)s + %(closed)s THEN 'COMPLETE'
        WHEN i %% 20 = 0 THEN 'ERROR'
        WHEN i %% 20 = 1 THEN 'IN_PROGRESS'
        ELSE 'COMPLETE'
    END,
    CASE WHEN i <= %(open)s THEN state_id ELSE '' END,
    false,
    jsonb_build_object(
        'patient', jsonb_build_object(
            'firstName', first_name, 'lastName', last_name,
            'dateOfBirth', to_char(date '1940-01-01' + ((i * 37) %% 25000)::int, 'YYYY-MM-DD'),
            'memberId', 'W' || lpad((i * 104729 %% 1000000000)::text, 9, '0'),
            'accountNumber', 'ACC-' || i)
        || CASE WHEN template_key = 'coverage-check'
            THEN jsonb_build_object('phone', '555-01' || lpad((i %% 100)::text, 2, '0'))
            ELSE '{{}}'::jsonb END,
        'payerId', payer
    ) || CASE template_key
        WHEN 'coverage-check' THEN jsonb_build_object(
            'dateOfService', to_char(opened + interval '7 days', 'YYYY-MM-DD'),
            'procedureCodes', jsonb_build_array('99213'))
        WHEN 'prior-authorization' THEN jsonb_build_object(
            'provider', jsonb_build_object('npi', '1' || lpad((i %% 1000000000)::text, 9, '0'),
                                           'name', 'Northside Orthopedics'),
            'procedureCodes', jsonb_build_array('27447', '20610'),
            'serviceDate', to_char(opened + interval '14 days', 'YYYY-MM-DD'),
            'urgency', CASE WHEN i %% 10 = 0 THEN 'expedited' ELSE 'standard' END,
            'clinicalNotes', 'Right knee osteoarthritis, failed 6 months of conservative '
                             'therapy; requesting total knee arthroplasty.')
        ELSE jsonb_build_object(
            'provider', jsonb_build_object('npi', '1' || lpad((i %% 1000000000)::text, 9, '0'),
                                           'name', 'Eastside Clinic'),
            'claim', jsonb_build_object(
                'claimId', 'CLM-' || i,
                'serviceDate', to_char(opened - interval '30 days', 'YYYY-MM-DD'),
                'procedureCodes', jsonb_build_array('99214'),
                'billedAmount', 180 + i %% 900, 'balance', 20 + i %% 400))
    END,
    '{{}}'::jsonb, '{{}}'::jsonb, '[]'::jsonb,
    opened - interval '2 minutes', opened, opened - interval '2 minutes', opened, ''
FROM generate_series(1, %(runs)s::bigint) AS i
CROSS JOIN LATERAL (
    SELECT {_ROW}
    FROM bench_pause p WHERE p.k = i %% (SELECT count(*) FROM bench_pause)
) AS r
ORDER BY i
"""

_ITEMS_OPEN_SQL = f"""
INSERT INTO reviewqueue_reviewitem (
    run_id, episode, queue_id, version_id, state_id, status, status_changed_at, priority,
    due_at, opened_at, closed_at, claimed_by_id, lease_until, patient_name, run_ref)
SELECT
    run.id, 1, r.queue_id, r.version_id, r.state_id,
    CASE WHEN i %% %(claimed_every)s = 0 THEN 'claimed' ELSE 'open' END,
    CASE WHEN i %% %(claimed_every)s = 0 THEN r.opened + interval '1 hour' ELSE r.opened END,
    r.priority + CASE WHEN i %% %(urgent_every)s = 0 THEN 20 ELSE 0 END,
    r.opened + r.sla, r.opened, NULL,
    CASE WHEN i %% %(claimed_every)s = 0 THEN
        (SELECT id FROM auth_user WHERE username = CASE WHEN i %% 2 = 0 THEN 'alice' ELSE 'bob'
         END)
    END,
    CASE WHEN i %% %(claimed_every)s = 0 THEN r.opened + interval '90 minutes' END,
    r.first_name || ' ' || r.last_name, r.flow_run_id::text
FROM generate_series(1, %(open)s::bigint) AS i
CROSS JOIN LATERAL (
    SELECT {_ROW}
    FROM bench_pause p WHERE p.k = i %% (SELECT count(*) FROM bench_pause)
) AS r
JOIN flows_integration_flowrun run ON run.flow_run_id = r.flow_run_id
ORDER BY i
"""

_ITEMS_CLOSED_SQL = f"""
INSERT INTO reviewqueue_reviewitem (
    run_id, episode, queue_id, version_id, state_id, status, status_changed_at, priority,
    due_at, opened_at, closed_at, claimed_by_id, lease_until, patient_name, run_ref)
SELECT
    run.id, 1, r.queue_id, r.version_id, r.state_id, 'resumed', r.opened + interval '3 hours',
    r.priority, r.opened + r.sla, r.opened, r.opened + interval '3 hours', NULL, NULL,
    r.first_name || ' ' || r.last_name, r.flow_run_id::text
FROM generate_series(%(open)s + 1, %(open)s + %(closed)s::bigint) AS i
CROSS JOIN LATERAL (
    SELECT {_ROW}
    FROM bench_pause p WHERE p.k = i %% (SELECT count(*) FROM bench_pause)
) AS r
JOIN flows_integration_flowrun run ON run.flow_run_id = r.flow_run_id
ORDER BY i
"""

# Each item's "opened" event, as item_open writes it, so the item's timeline has its history.
_AUDIT_SQL = """
INSERT INTO audit_auditevent (at, action, item_id, flow_run_id, ip, detail, actor_id, link)
SELECT opened_at, 'item.opened', id, run_ref::uuid, NULL,
       jsonb_build_object('queue', queue_id, 'state', state_id), NULL, ''
FROM reviewqueue_reviewitem
ORDER BY id
"""


def summary(url: str) -> dict[str, Any]:
    """What the dataset holds now (counted, not assumed)."""
    with psycopg.connect(url, autocommit=True) as conn:

        def one(query: str) -> Any:
            row = conn.execute(query).fetchone()
            return row[0] if row else None

        return {
            "flowrun_rows": one("SELECT count(*) FROM flows_integration_flowrun"),
            "items_workable": one(
                "SELECT count(*) FROM reviewqueue_reviewitem WHERE status IN ('open', 'claimed')"
            ),
            "items_all": one("SELECT count(*) FROM reviewqueue_reviewitem"),
            "items_workable_overdue_now": one(
                "SELECT count(*) FROM reviewqueue_reviewitem"
                " WHERE status IN ('open', 'claimed') AND due_at < now()"
            ),
            "audit_rows": one("SELECT count(*) FROM audit_auditevent"),
            "items_by_queue": dict(
                conn.execute(
                    "SELECT q.name, count(*) FROM reviewqueue_reviewitem i"
                    " JOIN reviewqueue_queue q ON q.id = i.queue_id"
                    " WHERE i.status IN ('open', 'claimed') GROUP BY q.name ORDER BY q.name"
                ).fetchall()
            ),
            "database_mb": database_size_mb(url),
        }
