"""``forms``: render and validate time of schema forms, next to plain Django forms of the same size.

(a) The largest demo form (prior-authorization's ``clinical-review``: sections, nested groups,
    rows, conditionals) and (b) a generated schema of 200 top-level fields of every kind. For
    each, "render" builds the form from the schema and renders its HTML (a GET), and "validate"
    builds it from a browser's POST, runs Django's fields and the JSON Schema check (a submit).
    The baseline is a hand-written ``django.forms.Form`` with the same fields, rendered with
    ``as_div()`` and validated from the same kind of POST. All in one process, interleaved, so
    each sees the same machine. Targets (issue 4): p95 under 20 ms for (a), under 100 ms for (b).
"""

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.measure import percentile
from bench.registry import Context, Metric, Outcome, scenario

DEMO = Path(__file__).parents[2] / "flows_engine" / "demo" / "prior-authorization" / "v1.yaml"
KINDS = ("string", "integer", "number", "date", "choice", "boolean", "textarea", "email")


def _setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def generated_schema(size: int) -> dict[str, Any]:
    """`size` fields cycling through the kinds a form has, a third of them required."""
    props: dict[str, Any] = {}
    for i in range(size):
        kind = KINDS[i % len(KINDS)]
        name = f"field{i:03d}"
        props[name] = {
            "string": {"type": "string", "maxLength": 100, "title": f"Text {i}"},
            "integer": {"type": "integer", "minimum": 0, "maximum": 1000},
            "number": {"type": "number", "minimum": 0},
            "date": {"type": "string", "format": "date"},
            "choice": {"type": "string", "enum": ["a", "b", "c", "d"]},
            "boolean": {"type": "boolean"},
            "textarea": {"type": "string", "maxLength": 2000},
            "email": {"type": "string", "format": "email"},
        }[kind]
    required = [name for i, name in enumerate(props) if i % 3 == 0]
    return {"type": "object", "required": required, "properties": props}


def generated_post(size: int) -> dict[str, str]:
    values = {
        "string": "some text",
        "integer": "12",
        "number": "12.5",
        "date": "2026-03-14",
        "choice": "b",
        "boolean": "true",
        "textarea": "a longer note",
        "email": "a@example.org",
    }
    post = {f"field{i:03d}": values[KINDS[i % len(KINDS)]] for i in range(size)}
    for i in range(0, size, 3):  # a required boolean is a checkbox, which sends "on" ticked
        if KINDS[i % len(KINDS)] == "boolean":
            post[f"field{i:03d}"] = "on"
    return post


def plain_form_class(size: int) -> type:
    """The baseline: the same fields written by hand with django.forms."""
    from django import forms

    fields: dict[str, Any] = {}
    for i in range(size):
        kind = KINDS[i % len(KINDS)]
        required = i % 3 == 0
        fields[f"field{i:03d}"] = {
            "string": lambda r: forms.CharField(max_length=100, required=r),
            "integer": lambda r: forms.IntegerField(min_value=0, max_value=1000, required=r),
            "number": lambda r: forms.DecimalField(min_value=0, required=r),
            "date": lambda r: forms.DateField(required=r),
            "choice": lambda r: forms.ChoiceField(choices=[(c, c) for c in "abcd"], required=r),
            "boolean": lambda r: forms.NullBooleanField(required=False),
            "textarea": lambda r: forms.CharField(widget=forms.Textarea, required=r),
            "email": lambda r: forms.EmailField(required=r),
        }[kind](required)
    return type("PlainForm", (forms.Form,), fields)


CLINICAL_POST = {
    "decision": "modify",
    "approvedUnits": "6",
    "authorization.validFrom": "2026-03-01",
    "authorization.validThrough": "2026-06-01",
    "diagnosisCodes~rows": "3",
    "diagnosisCodes.0.code": "M17.11",
    "diagnosisCodes.0.primary": "on",
    "diagnosisCodes.1.code": "E11.9",
    "diagnosisCodes.2.code": "I10",
    "criteria.guideline": "mcg",
    "criteria.met": "on",
    "reviewer.name": "Ann Reviewer",
    "reviewer.credential": "RN",
    "rationale": "Meets criteria with fewer visits.",
}


def _time(fn: Callable[[], Any], samples: int) -> list[float]:
    for _ in range(5):
        fn()  # warm the template cache and the regex caches
    out = []
    for _ in range(samples):
        began = time.perf_counter()
        fn()
        out.append((time.perf_counter() - began) * 1000)
    return out


@scenario("forms", "Schema forms: render + validate p95 next to plain Django forms")
def forms_scenario(ctx: Context) -> Outcome:
    _setup()
    import yaml
    from django.http import QueryDict
    from django.template.loader import render_to_string

    from reviewqueue.schema_forms import FormSpec, SchemaForm

    samples = 40 if ctx.quick else 300
    document = yaml.safe_load(DEMO.read_text())
    clinical = FormSpec.for_state(document, "clinical-review")
    assert clinical is not None
    big = FormSpec(schema=generated_schema(200), title="Generated")
    plain_cls = plain_form_class(200)

    def query(values: dict[str, str]) -> QueryDict:
        data = QueryDict(mutable=True)
        data.update(values)
        return data

    clinical_post, big_post = query(CLINICAL_POST), query(generated_post(200))
    plain_post = query({**generated_post(200)})

    def render_schema(spec: FormSpec) -> Callable[[], str]:
        def run() -> str:
            return render_to_string("schema_forms/form.html", {"form": SchemaForm(spec)})

        return run

    def validate_schema(spec: FormSpec, data: QueryDict) -> Callable[[], None]:
        def run() -> None:
            form = SchemaForm(spec, data=data)
            assert form.is_valid(), form.errors

        return run

    def render_plain() -> str:
        return str(plain_cls().as_div())

    def validate_plain() -> None:
        form = plain_cls(data=plain_post)
        assert form.is_valid(), form.errors

    cases = {
        "clinical_render": ("clinical-review: render", render_schema(clinical), None),
        "clinical_validate": (
            "clinical-review: validate",
            validate_schema(clinical, clinical_post),
            None,
        ),
        "gen200_render": ("200 fields: render", render_schema(big), "plain200_render"),
        "gen200_validate": (
            "200 fields: validate",
            validate_schema(big, big_post),
            "plain200_validate",
        ),
        "plain200_render": ("plain Django form, 200 fields: render", render_plain, None),
        "plain200_validate": ("plain Django form, 200 fields: validate", validate_plain, None),
    }
    # Interleave in slices so that no case gets a quieter machine than another.
    timings: dict[str, list[float]] = {key: [] for key in cases}
    for _ in range(10):
        for key, (_, fn, _) in cases.items():
            timings[key] += _time(fn, samples // 10)
    metrics = []
    for key, (label, _, baseline) in cases.items():
        metrics.append(
            Metric(
                f"{key}_p95",
                f"{label} p95",
                round(percentile(timings[key], 95), 2),
                "ms",
                baseline=f"{baseline}_p95" if baseline else None,
            )
        )
        metrics.append(
            Metric(f"{key}_p50", f"{label} p50", round(percentile(timings[key], 50), 2), "ms")
        )
    return Outcome(
        metrics=metrics,
        config={"samples_per_case": samples, "fields_generated": 200, "demo": str(DEMO.name)},
        details={
            "targets_ms": {"clinical_p95": 20, "gen200_p95": 100},
            "html_bytes": {
                "clinical": len(render_schema(clinical)()),
                "gen200": len(render_schema(big)()),
                "plain200": len(render_plain()),
            },
        },
    )
