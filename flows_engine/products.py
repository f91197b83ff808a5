"""Simulated Sohar products: Discovery, Verification, NetworkStatus and CostEstimate.

The engine must reach every branch of a template on one machine with nothing from outside, so each
product answers deterministically from its parameters: memorable sandbox values (documented in
docs/engine-products.md) pick "not found", "inactive", "error" and transient failures, and
everything else gets a plausible, stable answer derived from a hash of the inputs. Pure Python: no
Django, no I/O except the optional latency sleep.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from datetime import date
from typing import Any

__all__ = ["PAYERS", "PRODUCTS", "ProductFailure", "call_product"]

PAYERS: dict[str, str] = {
    "60054": "Aetna",
    "62308": "Cigna",
    "87726": "UnitedHealthcare",
    "61101": "Humana",
    "47198": "Anthem Blue Cross",
}

# Allowed amounts (in cents) for common codes; other well-formed codes get a stable hashed price.
PRICES: dict[str, tuple[str, int]] = {
    "99213": ("Office visit, established patient, low complexity", 15_000),
    "99214": ("Office visit, established patient, moderate complexity", 22_000),
    "93000": ("Electrocardiogram, 12 leads, with interpretation", 6_000),
    "80053": ("Comprehensive metabolic panel", 3_500),
    "97110": ("Therapeutic exercise, each 15 minutes", 9_500),
    "43239": ("Upper GI endoscopy with biopsy", 190_000),
    "70553": ("MRI brain without and with contrast", 280_000),
    "29881": ("Knee arthroscopy with meniscectomy", 650_000),
    "27447": ("Total knee arthroplasty", 3_200_000),
    "J1745": ("Infliximab, 10 mg", 120_000),
}

_MEMBER_ID = re.compile(r"^[A-Za-z0-9-]{2,20}$")
_PAYER_ID = re.compile(r"^[A-Za-z0-9]{2,10}$")
_NPI = re.compile(r"^[0-9]{10}$")
_PROCEDURE_CODE = re.compile(r"^[0-9A-Z][0-9]{3}[0-9A-Z]$")
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_NAME = re.compile(r"^[A-Za-z][A-Za-z' .-]{0,59}$")

DEDUCTIBLE_CENTS = 150_000
COINSURANCE_IN_NETWORK = 20
COINSURANCE_OUT_OF_NETWORK = 40
OUT_OF_NETWORK_MARKUP_PERCENT = 160


class ProductFailure(Exception):
    """A product refused or failed a call; `name` is the error name a template's catch matches."""

    def __init__(self, name: str, status: int, message: str, param: str | None = None) -> None:
        super().__init__(f"{name} ({status}): {message}")
        self.name = name
        self.status = status
        self.param = param
        self.message = message


def _unavailable(resource: str) -> ProductFailure:
    return ProductFailure("ProductUnavailable", 503, f"{resource} is temporarily unavailable")


def _invalid(param: str, message: str) -> ProductFailure:
    return ProductFailure("InvalidRequest", 400, message, param=param)


def _sandbox_trigger(resource: str, value: Any, attempt: int) -> None:
    """Raise the failure a magic value asks for: ERROR, FLAKY (first attempt only) or DOWN.

    Checked before format validation so the same three words work in every product's key field.
    """
    if not isinstance(value, str):
        return
    word = value.strip().upper()
    if word == "ERROR":
        raise ProductFailure("ProductError", 500, f"{resource} failed with an internal error")
    if word == "DOWN" or (word == "FLAKY" and attempt < 2):
        raise _unavailable(resource)


def _is_flaky(value: Any) -> bool:
    """FLAKY is let through format checks once it succeeds, so a retry gets an ordinary answer."""
    return isinstance(value, str) and value.strip().upper() == "FLAKY"


def _digits(*parts: Any, length: int = 9) -> str:
    """Stable digits from the inputs, so one patient always gets the same member id and price."""
    seed = "|".join(str(part).lower() for part in parts).encode()
    number = int(hashlib.sha256(seed).hexdigest(), 16)
    return str(number)[-length:].rjust(length, "0")


def _required_str(parameters: dict[str, Any], name: str, pattern: re.Pattern[str]) -> str:
    value = parameters.get(name)
    if value is None or value == "":
        raise _invalid(name, f"{name} is required")
    if not isinstance(value, str) or not (pattern.match(value) or _is_flaky(value)):
        raise _invalid(name, f"{name} is not valid")
    return value


def _optional_str(parameters: dict[str, Any], name: str, pattern: re.Pattern[str]) -> str | None:
    if parameters.get(name) is None:
        return None
    return _required_str(parameters, name, pattern)


def _payer(parameters: dict[str, Any], name: str = "payerId") -> str:
    payer_id = _required_str(parameters, name, _PAYER_ID)
    if payer_id not in PAYERS:
        raise _invalid(name, f"unknown payer {payer_id}")
    return payer_id


def _date(parameters: dict[str, Any], name: str, *, required: bool) -> date | None:
    value = parameters.get(name)
    if value is None or value == "":
        if required:
            raise _invalid(name, f"{name} is required")
        return None
    if not isinstance(value, str) or not _DATE.match(value):
        raise _invalid(name, f"{name} must be a date (YYYY-MM-DD)")
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise _invalid(name, f"{name} is not a real date") from exc


def _payer_ref(payer_id: str) -> dict[str, str]:
    return {"id": payer_id, "name": PAYERS[payer_id]}


def _plan(payer_id: str, member_id: str) -> dict[str, Any]:
    """The plan a member holds; stable per member so Discovery and Verification agree."""
    kind = ("PPO", "HMO", "EPO")[int(_digits(payer_id, member_id, length=3)) % 3]
    return {
        "planName": f"{PAYERS[payer_id]} Choice {kind}",
        "groupNumber": "GRP" + _digits("group", payer_id, member_id, length=6),
    }


def _is_inactive(member_id: str) -> bool:
    return member_id.startswith("999")


def _coverage_dates(member_id: str) -> dict[str, str]:
    if _is_inactive(member_id):
        return {"startDate": "2023-01-01", "endDate": "2024-12-31"}
    return {"startDate": "2025-01-01", "endDate": "2026-12-31"}


def discovery(parameters: dict[str, Any], attempt: int) -> dict[str, Any]:
    """Find a patient's coverage from demographics; `lastName` carries the sandbox triggers."""
    last_name = parameters.get("lastName")
    _sandbox_trigger("Discovery", last_name, attempt)
    first_name = _required_str(parameters, "firstName", _NAME)
    last_name = _required_str(parameters, "lastName", _NAME)
    born = _date(parameters, "dateOfBirth", required=True)
    if born is not None and born > date.today():
        raise _invalid("dateOfBirth", "dateOfBirth is in the future")
    hint = _payer(parameters) if parameters.get("payerId") else None
    if last_name.strip().lower() == "notfound":
        return {"found": False, "coverages": []}
    payer_id = hint or list(PAYERS)[int(_digits(first_name, last_name, born)) % len(PAYERS)]
    prefix = "999" if last_name.strip().lower() == "lapsed" else "W"
    member_id = prefix + _digits(payer_id, first_name, last_name, born, length=12 - len(prefix))
    coverage = {
        "payer": _payer_ref(payer_id),
        "memberId": member_id,
        "active": not _is_inactive(member_id),
        "relationship": "self",
        **_plan(payer_id, member_id),
        **_coverage_dates(member_id),
    }
    return {"found": True, "coverage": coverage, "coverages": [coverage]}


def _benefits(payer_id: str, member_id: str) -> dict[str, Any]:
    met = int(_digits("deductible", payer_id, member_id, length=2)) * 1_000
    remaining = max(DEDUCTIBLE_CENTS - met, 0)
    return {
        "copay": {"primaryCareCents": 2_500, "specialistCents": 5_000},
        "coinsurancePercent": COINSURANCE_IN_NETWORK,
        "deductibleCents": DEDUCTIBLE_CENTS,
        "deductibleRemainingCents": remaining,
        "outOfPocketMaxCents": 600_000,
        "outOfPocketRemainingCents": 600_000 - met,
    }


def verification(parameters: dict[str, Any], attempt: int) -> dict[str, Any]:
    """Check eligibility for one member at one payer; `memberId` carries the sandbox triggers."""
    _sandbox_trigger("Verification", parameters.get("memberId"), attempt)
    payer_id = _payer(parameters)
    member_id = _required_str(parameters, "memberId", _MEMBER_ID)
    _date(parameters, "dateOfService", required=False)
    base = {"payer": _payer_ref(payer_id), "memberId": member_id}
    # A callback timeout supplies UNKNOWN when nobody found the member ID: nothing to verify.
    if member_id.startswith("404") or member_id.upper() == "UNKNOWN":
        return {**base, "active": False, "status": "not_found"}
    inactive = _is_inactive(member_id)
    return {
        **base,
        "active": not inactive,
        "status": "inactive" if inactive else "active",
        **_plan(payer_id, member_id),
        "coverage": _coverage_dates(member_id),
        "benefits": {} if inactive else _benefits(payer_id, member_id),
    }


def _in_network(npi: str) -> bool:
    return not npi.startswith("9")


def network_status(parameters: dict[str, Any], attempt: int) -> dict[str, Any]:
    """Is a provider in network for a payer; `npi` carries the sandbox triggers."""
    _sandbox_trigger("NetworkStatus", parameters.get("npi"), attempt)
    payer_id = _payer(parameters)
    npi = _required_str(parameters, "npi", _NPI)
    in_network = _in_network(npi)
    return {
        "payer": _payer_ref(payer_id),
        "provider": {"npi": npi, "name": f"Sandbox Provider {npi[-4:]}"},
        "inNetwork": in_network,
        "status": "in_network" if in_network else "out_of_network",
        "tier": "preferred" if in_network and npi.endswith(("0", "2", "4")) else "standard",
        "effectiveDate": "2025-01-01" if in_network else None,
    }


def _procedure_codes(parameters: dict[str, Any], attempt: int) -> list[str]:
    codes = parameters.get("procedureCodes")
    if not codes:
        raise _invalid("procedureCodes", "procedureCodes is required")
    if not isinstance(codes, list):
        raise _invalid("procedureCodes", "procedureCodes must be a list")
    for code in codes:
        _sandbox_trigger("CostEstimate", code, attempt)
    for index, code in enumerate(codes):
        if not isinstance(code, str) or not (_PROCEDURE_CODE.match(code) or _is_flaky(code)):
            raise _invalid(f"procedureCodes[{index}]", f"{code!r} is not a CPT/HCPCS code")
    return codes


def _line(code: str, in_network: bool) -> dict[str, Any]:
    description, allowed = PRICES.get(code, ("Procedure " + code, 0))
    if not allowed:
        allowed = (int(_digits("price", code, length=4)) % 900 + 100) * 100
    charge = allowed * 2
    if not in_network:
        allowed = allowed * OUT_OF_NETWORK_MARKUP_PERCENT // 100
    return {
        "code": code,
        "description": description,
        "chargeCents": charge,
        "allowedCents": allowed,
    }


def _patient_share(allowed: int, deductible_remaining: int, coinsurance: int) -> int:
    toward_deductible = min(allowed, deductible_remaining)
    return toward_deductible + (allowed - toward_deductible) * coinsurance // 100


def cost_estimate(parameters: dict[str, Any], attempt: int) -> dict[str, Any]:
    """Estimate allowed amount and patient share; `memberId` and each procedure code carry the
    sandbox triggers (a template's input schema may forbid ERROR as a code, rarely as an id)."""
    _sandbox_trigger("CostEstimate", parameters.get("memberId"), attempt)
    codes = _procedure_codes(parameters, attempt)
    payer_id = _payer(parameters)
    member_id = _optional_str(parameters, "memberId", _MEMBER_ID)
    npi = _optional_str(parameters, "npi", _NPI)
    in_network = npi is None or _in_network(npi)
    lines = [_line(code, in_network) for code in codes]
    allowed = sum(line["allowedCents"] for line in lines)
    remaining = _benefits(payer_id, str(member_id))["deductibleRemainingCents"]
    coinsurance = COINSURANCE_IN_NETWORK if in_network else COINSURANCE_OUT_OF_NETWORK
    share = _patient_share(allowed, remaining, coinsurance)
    return {
        "payer": _payer_ref(payer_id),
        "inNetwork": in_network,
        "currency": "USD",
        "lines": lines,
        "totalChargeCents": sum(line["chargeCents"] for line in lines),
        "estimatedCostCents": allowed,
        "estimatedCost": allowed / 100,
        "patientResponsibilityCents": share,
        "patientResponsibility": share / 100,
    }


PRODUCTS: dict[str, Callable[[dict[str, Any], int], dict[str, Any]]] = {
    "Discovery": discovery,
    "Verification": verification,
    "NetworkStatus": network_status,
    "CostEstimate": cost_estimate,
}


def call_product(
    resource: str, parameters: dict[str, Any], *, latency_ms: int = 0, attempt: int = 1
) -> dict[str, Any]:
    """Call one simulated product; `attempt` (1-based) lets FLAKY succeed on a retry."""
    product = PRODUCTS.get(resource)
    if product is None:
        raise ProductFailure("ProductError", 500, f"unknown product {resource!r}")
    if not isinstance(parameters, dict):
        raise _invalid("parameters", "parameters must be an object")
    if latency_ms > 0:
        time.sleep(latency_ms / 1000)
    return product(parameters, attempt)
