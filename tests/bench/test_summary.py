"""The summary writer of ``python -m bench``: it rewrites the table between the markers only."""

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bench import report

NOW = datetime(2026, 12, 6, 15, 0, tzinfo=UTC)


def _result(scenario: str, started: str, *, quick: bool = False, p99: float = 120.0) -> dict:
    return {
        "scenario": scenario,
        "quick": quick,
        "started_at": started,
        "duration_s": 10.0,
        "machine": {"loadavg": [2.5, 2.0, 1.5]},
        "outcome": {
            "metrics": [
                {
                    "key": "ping_p99_50rps",
                    "label": "GET /ping p99",
                    "value": 10.0,
                    "unit": "ms",
                    "baseline": None,
                    "rounds": [],
                },
                {
                    "key": "webhook_p99_50rps",
                    "label": "webhook p99",
                    "value": p99,
                    "unit": "ms",
                    "baseline": "ping_p99_50rps",
                    "rounds": [],
                },
                {
                    "key": "webhook_max_50rps",
                    "label": "webhook max",
                    "value": 400.0,
                    "unit": "ms",
                    "baseline": None,
                    "rounds": [],
                },
            ],  # fmt: skip
            "config": {},
            "details": {},
        },
    }


@pytest.fixture
def results(tmp_path: Path) -> Path:
    folder = tmp_path / "results"
    folder.mkdir()
    for name, body in (
        ("20261206T100000Z-webhooks.json", _result("webhooks", "2026-12-06T10:00:00", p99=300)),
        ("20261206T110000Z-webhooks.json", _result("webhooks", "2026-12-06T11:00:00")),
        (
            "20261206T120000Z-webhooks.json",
            _result("webhooks", "2026-12-06T12:00:00", quick=True, p99=999),
        ),
    ):
        (folder / name).write_text(json.dumps(body))
    (folder / "notes.json").write_text("[]")  # not a result: skipped
    return folder


def test_latest_full_result_per_scenario(results: Path) -> None:
    found = report.latest_results(results)
    assert [b["_file"] for b in found] == ["20261206T110000Z-webhooks.json"]
    assert report.latest_results(results, quick=True)[0]["quick"] is True


def test_table_has_figure_baseline_ratio_and_target(results: Path) -> None:
    table = report.summary_table(report.latest_results(results))
    row = next(line for line in table.splitlines() if "webhook p99" in line)
    assert "120 ms" in row
    assert "10.0 ms (GET /ping p99)" in row
    assert "12.00x" in row
    assert "< 250 ms" in row
    assert "| yes |" in row
    assert "load 2.5" in row
    # Neither a baseline nor a target: not a summary figure.
    assert "webhook max" not in table
    assert "GET /ping p99 |" not in table.split("webhook p99")[0]


def test_only_the_block_between_the_markers_changes(results: Path, tmp_path: Path) -> None:
    doc = tmp_path / "BENCHMARKS.md"
    before = "# Benchmarks\n\nintro\n\n"
    after = "\n\n## Scenarios\n\nkept as written\n"
    doc.write_text(f"{before}{report.SUMMARY_START}\nold table\n{report.SUMMARY_END}{after}")
    report.summary_write(doc, report.latest_results(results), now=NOW)
    text = doc.read_text()
    assert text.startswith(before + report.SUMMARY_START)
    assert text.endswith(report.SUMMARY_END + after)
    assert "old table" not in text
    assert "webhook p99" in text
    assert "2026-12-06 15:00 UTC" in text
    # Rewriting is idempotent.
    report.summary_write(doc, report.latest_results(results), now=NOW)
    assert doc.read_text() == text


@pytest.mark.parametrize(
    "body",
    [
        "no markers at all\n",
        f"{report.SUMMARY_END}\n{report.SUMMARY_START}\n",
        f"{report.SUMMARY_START}\n{report.SUMMARY_START}\n{report.SUMMARY_END}\n",
    ],
)
def test_refuses_a_file_without_one_pair_of_markers(tmp_path: Path, body: str) -> None:
    doc = tmp_path / "BENCHMARKS.md"
    doc.write_text(body)
    with pytest.raises(ValueError):
        report.summary_write(doc, [], now=NOW)
    assert doc.read_text() == body
