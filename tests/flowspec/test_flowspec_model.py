"""The parsed template: every state type and the behaviour the engine relies on."""

import json
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flowspec import (
    CallbackState,
    CallbackTimeout,
    Catch,
    ChoiceState,
    NoChoiceMatched,
    RequestState,
    Retry,
    load_template,
)

DOC = Path(__file__).parents[2] / "docs" / "template-language.md"
# The first YAML block of the language doc, so the documented example cannot drift from the code.
EXAMPLE = re.search(r"```yaml\n(.*?)```", DOC.read_text(), re.DOTALL).group(1)
PATIENT = {"firstName": "Ada", "lastName": "Lovelace", "dateOfBirth": "1990-05-01"}


@pytest.fixture
def template():
    return load_template(EXAMPLE)


def context(**states):
    return {"input": {"patient": PATIENT}, "states": states}


def test_the_documented_example_loads(template):
    assert template.name == "Coverage check"
    assert template.description.startswith("Find a patient's coverage")
    assert template.starts_at == "discover"
    assert list(template.states) == ["discover", "coverage-found", "collect-member-id", "verify"]
    assert template.input_schema["required"] == ["patient"]
    assert template.document["metadata"]["version"] == 1


def test_each_state_has_its_type(template):
    assert [state.type for state in template.states.values()] == [
        "request",
        "choice",
        "callback",
        "request",
    ]
    assert template.state("verify").type == "request"


def test_state_raises_key_error_for_unknown_ids(template):
    with pytest.raises(KeyError):
        template.state("nope")


def test_callback_states(template):
    assert [state.id for state in template.callback_states()] == ["collect-member-id"]


def test_request_state_fields(template):
    discover = template.state("discover")
    assert isinstance(discover, RequestState)
    assert discover.resource == "Discovery"
    assert discover.retry == Retry(
        max_attempts=3, interval_seconds=1, backoff_rate=2, max_interval_seconds=30
    )
    assert discover.catch == (Catch(errors=("ProductUnavailable",), next="collect-member-id"),)
    assert (discover.next, discover.end) == ("coverage-found", False)
    verify = template.state("verify")
    assert (verify.next, verify.end) == (None, True)
    assert verify.retry == Retry()


def test_render_parameters_fills_paths_and_keeps_literals(template):
    assert template.state("discover").render_parameters(context()) == {
        **PATIENT,
        "source": "flowdesk",
    }


def test_render_parameters_leaves_out_missing_values(template):
    verify = template.state("verify")
    assert verify.render_parameters(context()) == {"payerId": "60054"}
    produced = context(**{"collect-member-id": {"memberId": "W1"}})
    assert verify.render_parameters(produced) == {"memberId": "W1", "payerId": "60054"}


def test_select_result_projects_the_response(template):
    response = {"found": True, "coverage": {"memberId": "W1", "payer": "Aetna"}, "extra": 1}
    assert template.state("discover").select_result(response, context()) == {
        "found": True,
        "memberId": "W1",
    }


def test_select_result_without_selector_keeps_the_whole_response(template):
    response = {"active": True, "copay": 20}
    assert template.state("verify").select_result(response, context()) is response


def test_catch_target():
    state = RequestState(
        id="r",
        resource="Discovery",
        catch=(Catch(("InvalidRequest",), "fix"), Catch(("*",), "fallback")),
        end=True,
    )
    assert state.catch_target("InvalidRequest") == "fix"
    assert state.catch_target("ProductError") == "fallback"
    assert RequestState(id="r", resource="Discovery", end=True).catch_target("ProductError") is None


def test_choice_state_picks_the_first_rule_that_holds(template):
    choice = template.state("coverage-found")
    assert isinstance(choice, ChoiceState)
    assert choice.next_state(context(discover={"found": True})) == "verify"
    assert choice.next_state(context(discover={"found": False})) == "collect-member-id"
    assert choice.next_state(context(discover={"error": {"error": "x"}})) == "collect-member-id"


def test_choice_state_without_default_raises_when_nothing_matches(template):
    document = load_template(EXAMPLE).document
    del document["states"]["coverage-found"]["default"]
    document["states"]["discover"]["catch"][0]["next"] = "verify"
    document["states"]["discover"]["next"] = "coverage-found"
    document["states"]["coverage-found"]["choices"].append(
        {"when": {"path": "$input.memberId", "isPresent": True}, "next": "collect-member-id"}
    )
    choice = load_template(json.dumps(document)).state("coverage-found")
    with pytest.raises(NoChoiceMatched) as caught:
        choice.next_state(context(discover={"found": False}))
    assert caught.value.state_id == "coverage-found"
    assert "coverage-found" in str(caught.value)


def test_callback_state_fields(template):
    callback = template.state("collect-member-id")
    assert isinstance(callback, CallbackState)
    assert callback.title == "Collect member ID"
    assert "**member ID**" in callback.instructions
    assert callback.input_schema["required"] == ["memberId"]
    assert callback.ui["order"] == ["memberId"]
    assert callback.timeout == CallbackTimeout(seconds=86400, input={"memberId": "UNKNOWN"})
    assert (callback.next, callback.end) == ("verify", False)


def test_callback_context_and_prefill_values():
    callback = CallbackState(
        id="c",
        title="C",
        instructions="",
        input_schema={"type": "object"},
        ui={
            "context": ["$input.patient.firstName", "$input.nope"],
            "prefill": {"name": "$input.patient.lastName", "other": "$input.nope"},
        },
        end=True,
    )
    assert callback.context_values(context()) == ["Ada", None]
    assert callback.prefill_values(context()) == {"name": "Lovelace"}


def test_evaluate_output(template):
    finished = context(**{"collect-member-id": {"memberId": "W1"}, "verify": {"active": True}})
    assert template.evaluate_output(finished) == {"memberId": "W1", "eligible": True}
    assert template.evaluate_output(context(verify={"active": False})) == {"eligible": False}


def test_evaluate_output_without_output_is_empty():
    document = load_template(EXAMPLE).document
    del document["output"]
    assert load_template(json.dumps(document)).evaluate_output(context()) == {}


def test_retry_defaults_retry_nothing():
    retry = Retry()
    assert not retry.should_retry("ProductUnavailable", 1)


def test_should_retry_counts_attempts_and_names():
    retry = Retry(max_attempts=3)
    assert retry.should_retry("ProductUnavailable", 1)
    assert retry.should_retry("ProductUnavailable", 2)
    assert not retry.should_retry("ProductUnavailable", 3)
    assert not retry.should_retry("InvalidRequest", 1)
    assert Retry(max_attempts=2, errors=("*",)).should_retry("ProductError", 1)


def test_delay_before_backs_off_and_caps():
    retry = Retry(max_attempts=10, interval_seconds=1, backoff_rate=2, max_interval_seconds=30)
    delays = [retry.delay_before(n) for n in range(1, 9)]
    assert delays == [0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert Retry(interval_seconds=5, backoff_rate=1).delay_before(4) == 5.0


@given(
    interval=st.floats(0, 100),
    rate=st.floats(1, 10),
    cap=st.floats(0, 1000),
    attempt=st.integers(2, 200),
)
def test_delays_never_shrink_and_never_exceed_the_cap(interval, rate, cap, attempt):
    retry = Retry(
        max_attempts=10, interval_seconds=interval, backoff_rate=rate, max_interval_seconds=cap
    )
    assert 0 <= retry.delay_before(attempt) <= cap
    assert retry.delay_before(attempt) <= retry.delay_before(attempt + 1)
