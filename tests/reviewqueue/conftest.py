"""Helpers for the schema-form tests: the corpus, rendering, and what a browser would submit."""

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.http import QueryDict
from django.template.loader import render_to_string

from reviewqueue.schema_forms import FormSpec, SchemaForm
from tests.reviewqueue.browser import submitted

SCHEMAS = Path(__file__).parent / "schemas"
CORPUS = sorted(SCHEMAS.glob("*.json"))
DEMO = Path(__file__).parents[2] / "flows_engine" / "demo"
DEMO_FILES = sorted(DEMO.glob("*/v*.yaml"))


def load_case(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def demo_specs() -> list[tuple[str, FormSpec, dict]]:
    """(id, spec, document) for the Start Run form and every callback state of the demos."""
    found = []
    for path in DEMO_FILES:
        document = yaml.safe_load(path.read_text())
        for state_id in FormSpec.state_ids(document):
            spec = FormSpec.for_state(document, state_id)
            found.append((f"{path.parent.name}-{path.stem}-{state_id}", spec, document))
    return found


def render(form: SchemaForm) -> str:
    return render_to_string("schema_forms/form.html", {"form": form})


def post(values: dict[str, Any]) -> QueryDict:
    data = QueryDict(mutable=True)
    for name, value in values.items():
        data.setlist(name, value if isinstance(value, list) else [value])
    return data


def round_trip(spec: FormSpec, instance: Any) -> SchemaForm:
    """Render `instance` as the form's values, submit what a browser would, validate."""
    html = render(SchemaForm(spec, initial=instance))
    form = SchemaForm(spec, data=submitted(html), initial=instance)
    form.is_valid()
    return form


@pytest.fixture
def ada(admin_client):
    """An admin, logged in."""
    return admin_client
