"""manage.py run_start: checks the input, starts the Run, prints its flowRunId; a clear error and
a non-zero exit otherwise."""

import json
import uuid

import pytest
from django.core.management import CommandError, call_command

from flows_integration.models import FlowRun
from intake.models import StartedRun
from tests.intake.conftest import COVERAGE_INPUT


def write(tmp_path, data) -> str:
    path = tmp_path / "input.json"
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return str(path)


@pytest.mark.django_db(transaction=True)
def test_it_starts_the_run_and_prints_its_id(live_templates, tmp_path, capsys):
    call_command("run_start", "coverage-check", input=write(tmp_path, COVERAGE_INPUT), version=1)
    printed = capsys.readouterr().out.strip()
    run = FlowRun.objects.get(flow_run_id=uuid.UUID(printed))
    assert run.version.number == 1
    assert StartedRun.objects.get().source == "command"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("template", "data", "says"),
    [
        ("coverage-check", {"patient": {"firstName": "Maria"}}, "patient.lastName"),
        ("coverage-check", "{not json", "cannot read the input JSON"),
        ("no-such-template", COVERAGE_INPUT, "templateId"),
    ],
)
def test_bad_input_is_a_clear_error(stored_coverage, no_flows_call, tmp_path, template, data, says):
    with pytest.raises(CommandError, match=says):
        call_command("run_start", template, input=write(tmp_path, data))
    assert not StartedRun.objects.exists()


@pytest.mark.django_db
def test_a_missing_file_is_a_clear_error(stored_coverage, no_flows_call, tmp_path):
    with pytest.raises(CommandError, match="cannot read"):
        call_command("run_start", "coverage-check", input=str(tmp_path / "absent.json"))


def test_a_bad_input_exits_non_zero(tmp_path):
    """From a shell, as a script runs it."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).parents[2]
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "run_start",
            "coverage-check",
            "--input",
            str(tmp_path / "x"),
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "cannot read the input JSON" in result.stderr
