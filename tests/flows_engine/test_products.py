"""The simulated Sohar products: every documented trigger (docs/engine-products.md) and refusal."""

from __future__ import annotations

import time
from typing import Any

import pytest

from flows_engine.products import PAYERS, ProductFailure, call_product

PATIENT = {"firstName": "Maria", "lastName": "Lopez", "dateOfBirth": "1984-03-12"}


def failure(resource: str, parameters: dict[str, Any], attempt: int = 1) -> ProductFailure:
    with pytest.raises(ProductFailure) as caught:
        call_product(resource, parameters, attempt=attempt)
    return caught.value


# Discovery


def test_discovery_finds_active_coverage_at_the_hinted_payer() -> None:
    response = call_product("Discovery", {**PATIENT, "payerId": "60054"})
    assert response["found"] is True
    coverage = response["coverage"]
    assert coverage["payer"] == {"id": "60054", "name": "Aetna"}
    assert coverage["active"] is True
    assert coverage["memberId"].startswith("W")
    assert len(coverage["memberId"]) == 12
    assert coverage["planName"].startswith("Aetna Choice ")
    assert response["coverages"] == [coverage]


def test_discovery_is_deterministic_and_picks_a_known_payer_without_a_hint() -> None:
    first = call_product("Discovery", PATIENT)
    assert first == call_product("Discovery", dict(PATIENT))
    assert first["coverage"]["payer"]["id"] in PAYERS


def test_discovery_notfound_finds_nothing() -> None:
    response = call_product("Discovery", {**PATIENT, "lastName": "Notfound"})
    assert response == {"found": False, "coverages": []}


def test_discovery_lapsed_finds_inactive_coverage_that_verification_confirms() -> None:
    coverage = call_product("Discovery", {**PATIENT, "lastName": "Lapsed", "payerId": "62308"})[
        "coverage"
    ]
    assert coverage["active"] is False
    assert coverage["memberId"].startswith("999")
    assert coverage["endDate"] == "2024-12-31"
    verified = call_product("Verification", {"payerId": "62308", "memberId": coverage["memberId"]})
    assert verified["active"] is False


def test_discovered_member_id_verifies_as_active() -> None:
    coverage = call_product("Discovery", PATIENT)["coverage"]
    params = {"payerId": coverage["payer"]["id"], "memberId": coverage["memberId"]}
    verified = call_product("Verification", params)
    assert verified["active"] is True
    assert verified["planName"] == coverage["planName"]


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("firstName", None),
        ("lastName", ""),
        ("firstName", "R2D2"),
        ("dateOfBirth", None),
        ("dateOfBirth", "03/12/1984"),
        ("dateOfBirth", "1984-02-30"),
        ("dateOfBirth", "2999-01-01"),
        ("payerId", "11111"),
    ],
)
def test_discovery_refuses_bad_parameters(param: str, value: Any) -> None:
    error = failure("Discovery", {**PATIENT, param: value})
    assert (error.name, error.status, error.param) == ("InvalidRequest", 400, param)


# Verification


def test_verification_sohar_sandbox_values_are_active() -> None:
    response = call_product("Verification", {"payerId": "60054", "memberId": "00000000"})
    assert response["active"] is True
    assert response["status"] == "active"
    assert response["payer"] == {"id": "60054", "name": "Aetna"}
    assert response["memberId"] == "00000000"
    assert response["coverage"] == {"startDate": "2025-01-01", "endDate": "2026-12-31"}
    benefits = response["benefits"]
    assert benefits["copay"]["specialistCents"] == 5_000
    assert 0 <= benefits["deductibleRemainingCents"] <= benefits["deductibleCents"]


def test_verification_member_id_999_is_inactive() -> None:
    response = call_product("Verification", {"payerId": "87726", "memberId": "999123456"})
    assert response["active"] is False
    assert response["status"] == "inactive"
    assert response["coverage"]["endDate"] == "2024-12-31"
    assert response["benefits"] == {}


@pytest.mark.parametrize("member_id", ["404123456", "UNKNOWN"])
def test_verification_unknown_member_is_not_found(member_id: str) -> None:
    response = call_product("Verification", {"payerId": "60054", "memberId": member_id})
    assert response == {
        "payer": {"id": "60054", "name": "Aetna"},
        "memberId": member_id,
        "active": False,
        "status": "not_found",
    }


@pytest.mark.parametrize(
    ("parameters", "param"),
    [
        ({"memberId": "00000000"}, "payerId"),
        ({"payerId": "99999", "memberId": "00000000"}, "payerId"),
        ({"payerId": "60054"}, "memberId"),
        ({"payerId": "60054", "memberId": "bad id!"}, "memberId"),
        ({"payerId": "60054", "memberId": "00000000", "dateOfService": "soon"}, "dateOfService"),
    ],
)
def test_verification_refuses_bad_parameters(parameters: dict[str, Any], param: str) -> None:
    error = failure("Verification", parameters)
    assert (error.name, error.status, error.param) == ("InvalidRequest", 400, param)


# NetworkStatus


def test_network_status_in_network() -> None:
    response = call_product("NetworkStatus", {"payerId": "61101", "npi": "1234567890"})
    assert response["inNetwork"] is True
    assert response["status"] == "in_network"
    assert response["tier"] == "preferred"
    assert response["provider"]["npi"] == "1234567890"
    assert call_product("NetworkStatus", {"payerId": "61101", "npi": "1234567893"})["tier"] == (
        "standard"
    )


def test_network_status_npi_starting_with_9_is_out_of_network() -> None:
    response = call_product("NetworkStatus", {"payerId": "61101", "npi": "9876543210"})
    assert response["inNetwork"] is False
    assert response["status"] == "out_of_network"
    assert response["effectiveDate"] is None


@pytest.mark.parametrize(
    ("parameters", "param"),
    [
        ({"npi": "1234567890"}, "payerId"),
        ({"payerId": "61101"}, "npi"),
        ({"payerId": "61101", "npi": "12345"}, "npi"),
    ],
)
def test_network_status_refuses_bad_parameters(parameters: dict[str, Any], param: str) -> None:
    assert failure("NetworkStatus", parameters).param == param


# CostEstimate


def test_cost_estimate_prices_known_codes_in_network() -> None:
    response = call_product(
        "CostEstimate",
        {"payerId": "60054", "memberId": "00000000", "procedureCodes": ["29881", "99213"]},
    )
    assert response["inNetwork"] is True
    assert response["currency"] == "USD"
    assert [line["allowedCents"] for line in response["lines"]] == [650_000, 15_000]
    assert response["estimatedCostCents"] == 665_000
    assert response["estimatedCost"] == 6650.0
    assert response["totalChargeCents"] == 1_330_000
    assert 0 < response["patientResponsibilityCents"] < response["estimatedCostCents"]
    assert response["patientResponsibility"] == response["patientResponsibilityCents"] / 100


def test_cost_estimate_below_and_above_the_demo_threshold() -> None:
    low = call_product("CostEstimate", {"payerId": "60054", "procedureCodes": ["99213"]})
    high = call_product("CostEstimate", {"payerId": "60054", "procedureCodes": ["29881"]})
    assert low["estimatedCost"] < 5000 < high["estimatedCost"]


def test_cost_estimate_out_of_network_costs_more() -> None:
    params = {"payerId": "60054", "memberId": "00000000", "procedureCodes": ["70553"]}
    inside = call_product("CostEstimate", {**params, "npi": "1234567890"})
    outside = call_product("CostEstimate", {**params, "npi": "9234567890"})
    assert outside["inNetwork"] is False
    assert outside["estimatedCostCents"] == 280_000 * 160 // 100
    assert outside["patientResponsibilityCents"] > inside["patientResponsibilityCents"]


def test_cost_estimate_prices_unknown_codes_stably() -> None:
    params = {"payerId": "62308", "procedureCodes": ["0042T"]}
    first = call_product("CostEstimate", params)
    assert first == call_product("CostEstimate", params)
    assert 10_000 <= first["estimatedCostCents"] <= 99_900


@pytest.mark.parametrize(
    ("parameters", "param"),
    [
        ({"procedureCodes": ["99213"]}, "payerId"),
        ({"payerId": "60054"}, "procedureCodes"),
        ({"payerId": "60054", "procedureCodes": []}, "procedureCodes"),
        ({"payerId": "60054", "procedureCodes": "99213"}, "procedureCodes"),
        ({"payerId": "60054", "procedureCodes": ["99213", "9921"]}, "procedureCodes[1]"),
        ({"payerId": "60054", "procedureCodes": ["99213"], "npi": "42"}, "npi"),
        ({"payerId": "60054", "procedureCodes": ["99213"], "memberId": "a b"}, "memberId"),
    ],
)
def test_cost_estimate_refuses_bad_parameters(parameters: dict[str, Any], param: str) -> None:
    error = failure("CostEstimate", parameters)
    assert (error.name, error.status, error.param) == ("InvalidRequest", 400, param)


# Triggers shared by every product


TRIGGERED = [
    ("Discovery", lambda word: {**PATIENT, "lastName": word}),
    ("Verification", lambda word: {"payerId": "60054", "memberId": word}),
    ("NetworkStatus", lambda word: {"payerId": "60054", "npi": word}),
    ("CostEstimate", lambda word: {"payerId": "60054", "procedureCodes": ["99213", word]}),
    (
        "CostEstimate",
        lambda word: {"payerId": "60054", "memberId": word, "procedureCodes": ["99213"]},
    ),
]


@pytest.mark.parametrize(("resource", "build"), TRIGGERED)
def test_error_is_a_product_error(resource: str, build: Any) -> None:
    error = failure(resource, build("ERROR"))
    assert (error.name, error.status, error.param) == ("ProductError", 500, None)
    assert resource in error.message


@pytest.mark.parametrize(("resource", "build"), TRIGGERED)
def test_flaky_fails_transiently_once_then_succeeds(resource: str, build: Any) -> None:
    parameters = build("Flaky")
    error = failure(resource, parameters, attempt=1)
    assert (error.name, error.status) == ("ProductUnavailable", 503)
    for attempt in (2, 3):
        assert call_product(resource, parameters, attempt=attempt)


@pytest.mark.parametrize(("resource", "build"), TRIGGERED)
def test_down_always_fails_transiently(resource: str, build: Any) -> None:
    for attempt in (1, 2, 10):
        error = failure(resource, build("DOWN"), attempt=attempt)
        assert (error.name, error.status) == ("ProductUnavailable", 503)


# Dispatch


def test_unknown_resource_is_a_product_error() -> None:
    error = failure("Eligibility", {})
    assert (error.name, error.status) == ("ProductError", 500)


def test_parameters_must_be_an_object() -> None:
    error = failure("Verification", ["60054"])  # type: ignore[arg-type]
    assert (error.name, error.param) == ("InvalidRequest", "parameters")


def test_latency_is_applied() -> None:
    started = time.monotonic()
    call_product("Verification", {"payerId": "60054", "memberId": "00000000"}, latency_ms=50)
    assert time.monotonic() - started >= 0.05


def test_failure_carries_its_fields_in_its_message() -> None:
    error = failure("Verification", {"payerId": "60054"})
    assert error.message == "memberId is required"
    assert str(error) == "InvalidRequest (400): memberId is required"
