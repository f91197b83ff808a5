"""Context shown in words: a path's label from the template's titles, a choice's title."""

import yaml

from reviewqueue.schema_forms import FormSpec
from reviewqueue.schema_forms.labels import path_label, schema_at, value_title
from tests.reviewqueue.conftest import PRIOR_AUTH, render

DOCUMENT = yaml.safe_load(PRIOR_AUTH.read_text())


def test_an_input_path_reads_as_the_titles_along_it():
    assert path_label(DOCUMENT, "$input.patient.firstName") == "Patient › First name"
    assert path_label(DOCUMENT, "$input.procedureCodes[0]") == "Procedure codes (CPT/HCPCS) › 1"


def test_a_state_path_reads_as_the_state_and_its_result():
    assert path_label(DOCUMENT, "$states.verify-coverage.planName") == "Verify coverage › Plan name"


def test_a_malformed_path_is_shown_as_written():
    assert path_label(DOCUMENT, "not a path") == "not a path"


def test_a_choice_shows_its_title_and_anything_else_nothing():
    payer = schema_at(DOCUMENT, "$input.payerId")
    assert value_title(payer, "60054") == "Aetna"
    assert value_title(payer, "99999") is None
    assert value_title(None, "60054") is None


def test_the_clinical_review_form_labels_its_context():
    spec = FormSpec.for_state(DOCUMENT, "clinical-review")
    assert spec is not None
    assert "Patient › Last name" in spec.context_labels
    assert len(spec.context_labels) == len(spec.context_paths) == len(spec.context_schemas)


def test_earlier_steps_read_as_the_states_titles_and_results():
    from reviewqueue.selectors import earlier_steps

    results = {
        "verify-coverage": {"active": True, "planName": "Gold PPO"},
        "clinical-review": {"decision": "approve"},
    }
    sections = earlier_steps(DOCUMENT, results)
    assert [s.title for s in sections] == ["Verify coverage", "Clinical review"]
    assert ("Plan name", "Gold PPO") in sections[0].rows
    assert ("Active", "Yes") in sections[0].rows
    assert ("Decision", "Approve as requested") in sections[1].rows


MONEY = yaml.safe_load(
    """
metadata: {name: Refund}
input:
  type: object
  properties:
    balanceCents: {type: integer, title: Open balance, x-display: cents}
    payerId: {type: string, title: Payer, oneOf: [{const: "60054", title: Aetna}]}
startsAt: estimate
states:
  estimate:
    type: request
    resource: CostEstimate
    parameters: {payerId: $input.payerId}
    resultSelector:
      type: object
      properties:
        copayCents: {value: $response.copayCents, title: Specialist copay, x-display: cents}
    next: refund-review
  refund-review:
    type: callback
    title: Review the refund
    input:
      type: object
      properties:
        approve: {type: boolean, title: Approve}
    ui:
      context: [$input.balanceCents, $input.payerId, $states.estimate.copayCents]
    end: true
"""
)


def test_a_state_path_finds_the_schema_of_what_the_state_produced():
    copay = schema_at(MONEY, "$states.estimate.copayCents")
    assert copay["x-display"] == "cents"
    assert schema_at(MONEY, "$states.refund-review.approve") == {
        "type": "boolean",
        "title": "Approve",
    }
    assert schema_at(MONEY, "$states.no-such-state.x") is None


def test_the_forms_context_shows_values_for_people_and_no_paths():
    from reviewqueue.schema_forms import SchemaForm

    spec = FormSpec.for_state(MONEY, "refund-review")
    assert spec is not None
    form = SchemaForm(spec, context_values=[123457, "60054", 2500])
    shown = [(label, value) for label, value, _ in form.context_items]
    assert shown == [
        ("Open balance", "$1,234.57"),
        ("Payer", "Aetna"),
        ("Estimate › Specialist copay", "$25.00"),
    ]
    html = render(form)
    assert "$1,234.57" in html
    assert "$input" not in html and "$states" not in html
