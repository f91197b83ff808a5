"""The demo templates publish, and every branch they promise is reachable with the sandbox products.

A small walker plays the engine's part with flowspec's API and the simulated products: render
parameters, call the product (retrying as the state says), select the result or follow `catch`,
pick choices, and feed callbacks input that their schema accepts. No database, no Celery.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from jsonschema import ValidationError

from flows_engine.products import ProductFailure, call_product
from flowspec import (
    CallbackState,
    ChoiceState,
    RequestState,
    Template,
    declared_properties,
    input_validator,
    load_template,
)

DEMO = Path(__file__).resolve().parents[2] / "flows_engine" / "demo"
TEMPLATE_FILES = sorted(DEMO.glob("*/v*.yaml"))


def load(template_id: str, version: int) -> Template:
    return load_template((DEMO / template_id / f"v{version}.yaml").read_text())


@dataclass
class Walk:
    """What one Run did: the states it went through, product attempts per state, its output."""

    visited: list[str] = field(default_factory=list)
    attempts: dict[str, int] = field(default_factory=dict)
    states: dict[str, Any] = field(default_factory=dict)
    output: dict[str, Any] = field(default_factory=dict)

    @property
    def ended_at(self) -> str:
        return self.visited[-1]


def run_request(state: RequestState, context: dict[str, Any], walk: Walk) -> str | None:
    """Produce the state's result; return the catch target when an error was routed."""
    parameters = state.render_parameters(context)
    attempt = 1
    while True:
        walk.attempts[state.id] = attempt
        try:
            response = call_product(state.resource, parameters, attempt=attempt)
        except ProductFailure as failure:
            if state.retry.should_retry(failure.name, attempt):
                attempt += 1
                continue
            target = state.catch_target(failure.name)
            if target is None:
                raise
            error = {"error": failure.name, "param": failure.param, "status": failure.status}
            context["states"][state.id] = {"error": error}
            return target
        context["states"][state.id] = state.select_result(response, context)
        return None


def run_callback(state: CallbackState, context: dict[str, Any], answers: dict[str, Any]) -> None:
    """Accept the answer for this callback, exactly as Update Run would validate it."""
    state.context_values(context)
    state.prefill_values(context)
    answer = answers[state.id]
    input_validator(state.input_schema).validate(answer)
    context["states"][state.id] = answer


def walk(template: Template, input_data: dict[str, Any], answers: dict[str, Any]) -> Walk:
    input_validator(template.input_schema).validate(input_data)
    context: dict[str, Any] = {"input": input_data, "states": {}}
    result = Walk(states=context["states"])
    state_id = template.starts_at
    while True:
        result.visited.append(state_id)
        assert len(result.visited) < 50, "the walk loops"
        state = template.state(state_id)
        if isinstance(state, ChoiceState):
            state_id = state.next_state(context)
            continue
        if isinstance(state, RequestState):
            target = run_request(state, context, result)
            if target is not None:
                state_id = target
                continue
        else:
            run_callback(state, context, answers)
        if state.end:
            result.output = template.evaluate_output(context)
            return result
        assert state.next is not None
        state_id = state.next


# Every template


@pytest.mark.parametrize("path", TEMPLATE_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_demo_template_publishes_with_a_callback_state(path: Path) -> None:
    template = load_template(path.read_text())
    assert template.callback_states()
    for callback in template.callback_states():
        assert callback.instructions.strip()
        assert callback.ui.get("order")
        if callback.timeout is not None:
            input_validator(callback.input_schema).validate(callback.timeout.input)


def test_demo_templates_are_the_three_documented_ids() -> None:
    found = {(path.parent.name, path.name) for path in TEMPLATE_FILES}
    assert found == {
        ("coverage-check", "v1.yaml"),
        ("coverage-check", "v2.yaml"),
        ("prior-authorization", "v1.yaml"),
        ("billing-write-off", "v1.yaml"),
    }


# coverage-check


def test_coverage_check_versions_differ_in_the_collect_member_id_schema() -> None:
    v1 = load("coverage-check", 1).state("collect-member-id")
    v2 = load("coverage-check", 2).state("collect-member-id")
    assert isinstance(v1, CallbackState)
    assert isinstance(v2, CallbackState)
    assert v1.input_schema != v2.input_schema
    assert v1.input_schema["required"] == ["memberId"]
    assert v2.input_schema["required"] == ["payerId", "memberId"]
    payers = v2.input_schema["properties"]["payerId"]["oneOf"]
    assert {"const": "60054", "title": "Aetna"} in payers
    assert "notes" in v2.input_schema["properties"]
    assert not input_validator(v2.input_schema).is_valid({"memberId": "00000000"})


def coverage_input(last_name: str = "Lopez") -> dict[str, Any]:
    return {
        "patient": {
            "firstName": "Maria",
            "lastName": last_name,
            "dateOfBirth": "1984-03-12",
            "phone": "(555) 010-4477",
        },
        "payerId": "60054",
        "dateOfService": "2026-02-10",
        "procedureCodes": ["99213"],
    }


def member_id_answer(version: int, member_id: str) -> dict[str, Any]:
    if version == 1:
        return {"memberId": member_id}
    return {"payerId": "60054", "memberId": member_id, "notes": "Read from the card by phone"}


VERSIONS = pytest.mark.parametrize("version", [1, 2])


@VERSIONS
def test_coverage_check_found_and_active(version: int) -> None:
    result = walk(load("coverage-check", version), coverage_input(), {})
    assert result.visited == ["discover", "coverage-found", "verify-discovered"]
    eligibility = result.output["eligibility"]
    assert eligibility["active"] is True
    assert eligibility["payerName"] == "Aetna"
    assert eligibility["memberId"] == result.output["discovered"]["memberId"]
    assert result.output["patient"] == {"firstName": "Maria", "lastName": "Lopez"}


@VERSIONS
def test_coverage_check_typical_input_renders_every_parameter(version: int) -> None:
    template = load("coverage-check", version)
    context = {"input": coverage_input(), "states": {}}
    discover = template.state("discover")
    assert isinstance(discover, RequestState)
    assert discover.render_parameters(context).keys() == discover.parameters.keys()


@VERSIONS
def test_coverage_check_discovered_but_inactive(version: int) -> None:
    answers = {"coverage-inactive": {"nextStep": "self-pay", "notes": "Will pay at the visit"}}
    result = walk(load("coverage-check", version), coverage_input("Lapsed"), answers)
    assert result.ended_at == "coverage-inactive"
    assert result.states["discover"]["active"] is False
    assert result.output["inactiveFollowUp"]["nextStep"] == "self-pay"


@VERSIONS
def test_coverage_check_not_found_collects_the_sandbox_member_id(version: int) -> None:
    answers = {"collect-member-id": member_id_answer(version, "00000000")}
    result = walk(load("coverage-check", version), coverage_input("Notfound"), answers)
    assert result.visited == ["discover", "coverage-found", "collect-member-id", "verify-entered"]
    assert result.output["eligibilityFromEnteredId"]["active"] is True
    assert result.output["enteredMemberId"] == "00000000"
    assert "eligibility" not in result.output


@VERSIONS
def test_coverage_check_entered_member_id_is_inactive(version: int) -> None:
    answers = {"collect-member-id": member_id_answer(version, "999123456")}
    result = walk(load("coverage-check", version), coverage_input("Notfound"), answers)
    assert result.output["eligibilityFromEnteredId"]["status"] == "inactive"
    assert result.output["eligibilityFromEnteredId"]["active"] is False


@VERSIONS
def test_coverage_check_timeout_input_is_not_found(version: int) -> None:
    template = load("coverage-check", version)
    callback = template.state("collect-member-id")
    assert isinstance(callback, CallbackState)
    assert callback.timeout is not None
    answers = {"collect-member-id": callback.timeout.input}
    result = walk(template, coverage_input("Notfound"), answers)
    assert result.output["eligibilityFromEnteredId"]["status"] == "not_found"


@VERSIONS
def test_coverage_check_retries_a_flaky_discovery(version: int) -> None:
    result = walk(load("coverage-check", version), coverage_input("Flaky"), {})
    assert result.attempts["discover"] == 2
    assert result.ended_at == "verify-discovered"


@VERSIONS
@pytest.mark.parametrize(
    ("last_name", "error"), [("Down", "ProductUnavailable"), ("Error", "ProductError")]
)
def test_coverage_check_discovery_failure_falls_back_to_staff(
    version: int, last_name: str, error: str
) -> None:
    answers = {"collect-member-id": member_id_answer(version, "00000000")}
    result = walk(load("coverage-check", version), coverage_input(last_name), answers)
    assert result.visited[:2] == ["discover", "collect-member-id"]
    assert result.states["discover"]["error"]["error"] == error
    assert result.output["eligibilityFromEnteredId"]["active"] is True


def test_coverage_check_v1_callback_uses_the_intake_payer_and_v2_the_entered_one() -> None:
    entered = {"payerId": "62308", "memberId": "00000000"}
    result = walk(
        load("coverage-check", 2), coverage_input("Notfound"), {"collect-member-id": entered}
    )
    assert result.output["eligibilityFromEnteredId"]["payerName"] == "Cigna"
    assert result.output["enteredPayerId"] == "62308"
    result = walk(
        load("coverage-check", 1),
        coverage_input("Notfound"),
        {"collect-member-id": {"memberId": "00000000"}},
    )
    assert result.output["eligibilityFromEnteredId"]["payerName"] == "Aetna"


# prior-authorization


def prior_auth_input(member_id: str = "00000000", codes: tuple[str, ...] = ("99213",)) -> dict:
    return {
        "patient": {
            "firstName": "James",
            "lastName": "Okafor",
            "dateOfBirth": "1961-07-30",
            "memberId": member_id,
        },
        "payerId": "60054",
        "provider": {"npi": "1234567890", "name": "Dr. Priya Raman, Orthopedics"},
        "procedureCodes": list(codes),
        "serviceDate": "2026-03-02",
        "urgency": "standard",
        "clinicalNotes": "Right knee pain for 9 months; failed 12 weeks of physical therapy.",
    }


def review(decision: str, **extra: Any) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "decision": decision,
        "diagnosisCodes": [
            {
                "code": "M17.11",
                "description": "Primary osteoarthritis, right knee",
                "primary": True,
            },
            {"code": "M23.221", "description": "Derangement of posterior horn of medial meniscus"},
        ],
        "criteria": {"guideline": "interqual", "met": decision != "deny", "citation": "Knee 4.2"},
        "reviewer": {"name": "Dana Whitfield", "credential": "RN"},
    }
    if decision in ("approve", "modify"):
        answer["authorization"] = {"validFrom": "2026-03-02", "validThrough": "2026-06-01"}
    if decision == "deny":
        answer["denialReason"] = "not-medically-necessary"
        answer["rationale"] = "Conservative therapy is not documented for the required period."
    return {**answer, **extra}


SIGNOFF = {"signoff": "upheld", "signedBy": "Dr. Alan Cho", "signedOn": "2026-02-20"}


def test_prior_authorization_low_cost_approval_checks_the_network() -> None:
    answers = {"clinical-review": review("approve")}
    result = walk(load("prior-authorization", 1), prior_auth_input(), answers)
    assert result.visited == [
        "verify-coverage",
        "coverage-active",
        "estimate-cost",
        "clinical-review",
        "review-decision",
        "confirm-network",
    ]
    assert result.output["estimate"]["estimatedCost"] == 150.0
    assert result.output["decision"] == "approve"
    assert result.output["network"] == {"inNetwork": True, "tier": "preferred"}
    assert "signoff" not in result.output


def test_prior_authorization_high_cost_approval_needs_sign_off() -> None:
    answers = {"clinical-review": review("approve"), "supervisor-signoff": SIGNOFF}
    template = load("prior-authorization", 1)
    result = walk(template, prior_auth_input(codes=("29881",)), answers)
    assert result.states["estimate-cost"]["estimatedCost"] > 5000
    assert result.ended_at == "supervisor-signoff"
    assert result.output["signoff"]["signoff"] == "upheld"


def test_prior_authorization_modified_approval_with_units() -> None:
    answers = {"clinical-review": review("modify", approvedUnits=8)}
    result = walk(load("prior-authorization", 1), prior_auth_input(codes=("97110",)), answers)
    assert result.ended_at == "confirm-network"
    assert result.output["approvedUnits"] == 8


def test_prior_authorization_denial_needs_sign_off_even_when_cheap() -> None:
    overturned = {**SIGNOFF, "signoff": "overturned", "comments": "Therapy notes arrived late."}
    answers = {"clinical-review": review("deny"), "supervisor-signoff": overturned}
    result = walk(load("prior-authorization", 1), prior_auth_input(), answers)
    assert result.ended_at == "supervisor-signoff"
    assert result.output["denialReason"] == "not-medically-necessary"


@pytest.mark.parametrize(
    ("member_id", "status"),
    [("999123456", "inactive"), ("404000001", "not_found"), ("DOWN", None)],
)
def test_prior_authorization_coverage_problem(member_id: str, status: str | None) -> None:
    answers = {"coverage-problem": {"outcome": "resubmit", "contactedOn": "2026-02-11"}}
    result = walk(load("prior-authorization", 1), prior_auth_input(member_id), answers)
    assert result.ended_at == "coverage-problem"
    assert "estimate-cost" not in result.visited
    if status is None:
        assert result.attempts["verify-coverage"] == 4
        assert result.states["verify-coverage"]["error"]["error"] == "ProductUnavailable"
    else:
        assert result.output["coverage"]["status"] == status


def test_prior_authorization_missing_estimate_goes_to_sign_off() -> None:
    template = load("prior-authorization", 1)
    estimate = template.state("estimate-cost")
    assert isinstance(estimate, RequestState)
    assert estimate.catch_target("ProductError") == "clinical-review"
    decision = template.state("review-decision")
    assert isinstance(decision, ChoiceState)
    context = {
        "input": prior_auth_input(),
        "states": {"estimate-cost": {"error": {"error": "ProductError"}}},
    }
    context["states"]["clinical-review"] = review("approve")
    assert decision.next_state(context) == "supervisor-signoff"


def clinical_review_validator() -> Any:
    state = load("prior-authorization", 1).state("clinical-review")
    assert isinstance(state, CallbackState)
    return input_validator(state.input_schema)


@pytest.mark.parametrize(
    "answer",
    [
        review("deny", denialReason=None),
        {k: v for k, v in review("deny").items() if k != "denialReason"},
        {k: v for k, v in review("approve").items() if k != "authorization"},
        review("approve", authorization={"validFrom": "2026-03-02"}),
        review("modify"),
        review("modify", approvedUnits=61),
        review("modify", approvedUnits=2.5),
        review("approve", diagnosisCodes=[]),
        review("approve", diagnosisCodes=[{"code": "knee"}]),
        review("approve", authorization={"validFrom": "2026-13-01", "validThrough": "2026-06-01"}),
        review("maybe"),
        review("approve", reviewer={"name": "Dana Whitfield", "credential": "CNA"}),
    ],
)
def test_clinical_review_schema_refuses(answer: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        clinical_review_validator().validate(answer)


def test_clinical_review_ui_names_real_fields() -> None:
    state = load("prior-authorization", 1).state("clinical-review")
    assert isinstance(state, CallbackState)
    # Fields for one decision only are declared in its branch (shown only while it holds).
    fields = set(declared_properties(state.input_schema))
    assert {"denialReason", "approvedUnits", "authorization"} <= fields
    assert {"denialReason", "approvedUnits", "authorization"}.isdisjoint(
        state.input_schema["properties"]
    )
    assert set(state.ui["order"]) == fields
    assert {name for section in state.ui["sections"] for name in section["fields"]} == fields
    assert set(state.ui["fields"]) <= fields


# billing-write-off


def write_off_input(npi: str = "1234567890", member_id: str = "00000000", **claim: Any) -> dict:
    return {
        "patient": {
            "firstName": "Lena",
            "lastName": "Horvath",
            "dateOfBirth": "1990-11-05",
            "accountNumber": "ACC-10023",
            "memberId": member_id,
        },
        "payerId": "62308",
        "provider": {"npi": npi, "name": "Riverside Family Medicine"},
        "claim": {
            "claimId": "CLM-2025-0042",
            "serviceDate": "2025-11-03",
            "procedureCodes": ["99214", "80053"],
            "billedAmount": 515.0,
            "balance": 85.5,
            **claim,
        },
    }


POSTED = {"postedOn": "2026-01-15", "adjustmentId": "ADJ-000123", "statementSuppressed": True}
APPROVED = {"decision": "approve", "approvedAmount": 1200.0}


def test_billing_small_write_off_posts_without_a_manager() -> None:
    answers = {
        "request-write-off": {
            "reason": "small-balance",
            "amount": 85.5,
            "adjustmentCode": "CO-45",
        },
        "post-adjustment": POSTED,
    }
    result = walk(load("billing-write-off", 1), write_off_input(), answers)
    assert result.visited == [
        "estimate-allowed",
        "check-network",
        "request-write-off",
        "route-approval",
        "post-adjustment",
    ]
    assert result.output["allowedAmount"] == 255.0
    assert result.output["inNetwork"] is True
    assert result.output["posting"]["adjustmentId"] == "ADJ-000123"


def test_billing_large_write_off_is_approved_by_a_manager() -> None:
    answers = {
        "request-write-off": {"reason": "contractual", "amount": 1200.0, "adjustmentCode": "CO-45"},
        "manager-approval": APPROVED,
        "post-adjustment": POSTED,
    }
    result = walk(load("billing-write-off", 1), write_off_input(balance=1450.0), answers)
    assert result.visited[-3:] == ["manager-approval", "manager-decision", "post-adjustment"]


def test_billing_rejected_hardship_is_closed() -> None:
    request = {
        "reason": "hardship",
        "amount": 85.5,
        "adjustmentCode": "WO-HS",
        "hardship": {"householdSize": 4, "annualIncome": 31000, "documentsReceived": ["pay-stubs"]},
    }
    rejected = {
        "decision": "reject",
        "rejectionReason": "Income is above the charity care limit.",
        "nextStep": "payment-plan",
    }
    answers = {
        "request-write-off": request,
        "manager-approval": rejected,
        "close-request": {"done": True},
    }
    result = walk(load("billing-write-off", 1), write_off_input(), answers)
    assert result.ended_at == "close-request"
    assert result.output["approval"]["nextStep"] == "payment-plan"


@pytest.mark.parametrize(
    ("npi", "claim", "reason"),
    [
        ("9876543210", {}, "small-balance"),
        ("1234567890", {"denialCode": "CO-29"}, "timely-filing"),
    ],
)
def test_billing_out_of_network_or_late_filing_goes_to_a_manager(
    npi: str, claim: dict[str, Any], reason: str
) -> None:
    request = {"reason": reason, "amount": 85.5, "adjustmentCode": "CO-29"}
    answers = {
        "request-write-off": request,
        "manager-approval": {**APPROVED, "approvedAmount": 85.5},
        "post-adjustment": POSTED,
    }
    result = walk(load("billing-write-off", 1), write_off_input(npi, **claim), answers)
    assert "manager-approval" in result.visited
    assert result.ended_at == "post-adjustment"


def test_billing_carries_on_without_an_estimate_when_cost_estimate_is_down() -> None:
    answers = {
        "request-write-off": {"reason": "bad-debt", "amount": 85.5, "adjustmentCode": "WO-BD"},
        "post-adjustment": POSTED,
    }
    result = walk(load("billing-write-off", 1), write_off_input(member_id="DOWN"), answers)
    assert result.attempts["estimate-allowed"] == 4
    assert result.states["estimate-allowed"]["error"]["error"] == "ProductUnavailable"
    assert "allowedAmount" not in result.output
    assert result.ended_at == "post-adjustment"


def test_billing_retries_a_flaky_estimate() -> None:
    answers = {
        "request-write-off": {"reason": "small-balance", "amount": 10, "adjustmentCode": "CO-45"},
        "post-adjustment": POSTED,
    }
    result = walk(load("billing-write-off", 1), write_off_input(member_id="FLAKY"), answers)
    assert result.attempts["estimate-allowed"] == 2
    assert result.output["allowedAmount"] == 255.0


def write_off_validator() -> Any:
    state = load("billing-write-off", 1).state("request-write-off")
    assert isinstance(state, CallbackState)
    return input_validator(state.input_schema)


BASE_REQUEST = {"reason": "small-balance", "amount": 19.99, "adjustmentCode": "CO-45"}


def test_write_off_schema_accepts_cents() -> None:
    write_off_validator().validate(BASE_REQUEST)


@pytest.mark.parametrize(
    "change",
    [
        {"reason": "other"},
        {"reason": "other", "explanation": "too short"},
        {"reason": "hardship"},
        {"payerReference": "REF-7781"},
        {"amount": 0},
        {"amount": 50000.01},
        {"adjustmentCode": "CO-999"},
        {"payerContactDate": "yesterday"},
    ],
)
def test_write_off_schema_refuses(change: dict[str, Any]) -> None:
    assert not write_off_validator().is_valid({**BASE_REQUEST, **change})


def test_write_off_schema_conditionals_accept_complete_answers() -> None:
    validator = write_off_validator()
    explanation = "Duplicate charge entered by the front desk."
    validator.validate({**BASE_REQUEST, "reason": "other", "explanation": explanation})
    validator.validate(
        {**BASE_REQUEST, "payerReference": "REF-7781", "payerContactDate": "2026-01-10"}
    )


def test_manager_approval_needs_a_reason_to_reject_and_an_amount_to_approve() -> None:
    state = load("billing-write-off", 1).state("manager-approval")
    assert isinstance(state, CallbackState)
    validator = input_validator(state.input_schema)
    assert not validator.is_valid({"decision": "reject"})
    assert not validator.is_valid({"decision": "approve"})
    assert validator.is_valid(APPROVED)
