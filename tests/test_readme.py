"""The README's "Drive a Run with curl" walkthrough, run against the engine with the same bodies.

Every `-d @docs/examples/...` body the README sends is loaded from that file here, so a change to
a demo template that breaks an example (or a renamed example) fails this test.
"""

import json
import re
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
EXAMPLES = ROOT / "docs" / "examples"


def example(name: str) -> dict:
    return json.loads((EXAMPLES / name).read_text())


def curl_section() -> str:
    text = README.read_text()
    start = text.index("## Drive a Run with curl")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def wait_for(
    api: httpx.Client, run_id: str, status: str, state_id: str | None = None, timeout: float = 30
) -> dict:
    """Poll Get Run until it has `status` (and `stateId`, when given); fail fast on ERROR."""
    deadline = time.monotonic() + timeout
    while True:
        body = api.get(f"/v1/flow-runs/{run_id}").json()
        if body["status"] == status and (state_id is None or body["stateId"] == state_id):
            return body
        assert body["status"] != "ERROR", body
        assert time.monotonic() < deadline, (
            f"run is {body['status']} at {body['stateId']}, wanted {status} at {state_id}"
        )
        time.sleep(0.05)


def create(api: httpx.Client, template_id: str, body: dict) -> str:
    response = api.post(f"/v1/flows/{template_id}/runs", json=body)
    assert response.status_code == 201, response.text
    return response.json()["flowRunId"]


def update(api: httpx.Client, run_id: str, body: dict) -> None:
    response = api.put(f"/v1/flow-runs/{run_id}", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "IN_PROGRESS"


def test_every_example_the_readme_sends_exists():
    referenced = re.findall(r"-d @(docs/examples/[\w.-]+)", curl_section())
    assert len(referenced) >= 6
    for path in referenced:
        assert (ROOT / path).is_file(), f"README sends {path}, which does not exist"


def test_examples_are_pretty_printed_json():
    for path in sorted(EXAMPLES.glob("*.json")):
        text = path.read_text()
        assert text == json.dumps(json.loads(text), indent=2, ensure_ascii=False) + "\n", path.name


def test_coverage_check(engine_api, demo_templates, celery_worker):
    patient = {"firstName": "Maria", "lastName": "Notfound", "dateOfBirth": "1980-02-29"}
    body = {"inputData": {"patient": patient, "payerId": "60054"}, "version": 1}
    run_id = create(engine_api, "coverage-check", body)
    wait_for(engine_api, run_id, "PENDING", "collect-member-id")

    update(engine_api, run_id, {"input": {"memberId": "00000000"}})
    done = wait_for(engine_api, run_id, "COMPLETE")
    assert done["output"]["eligibilityFromEnteredId"]["active"] is True


def test_prior_authorization(engine_api, demo_templates, celery_worker):
    run_id = create(engine_api, "prior-authorization", example("prior-authorization-input.json"))
    wait_for(engine_api, run_id, "PENDING", "clinical-review")

    update(engine_api, run_id, example("clinical-review-approve.json"))
    wait_for(engine_api, run_id, "PENDING", "supervisor-signoff")

    update(engine_api, run_id, example("supervisor-signoff.json"))
    done = wait_for(engine_api, run_id, "COMPLETE")
    output = done["output"]
    assert output["coverage"]["active"] is True
    assert output["estimate"]["estimatedCost"] > 5000
    assert output["decision"] == "approve"
    assert output["signoff"]["signoff"] == "upheld"


def test_billing_write_off(engine_api, demo_templates, celery_worker):
    run_id = create(engine_api, "billing-write-off", example("billing-write-off-input.json"))
    wait_for(engine_api, run_id, "PENDING", "request-write-off")

    update(engine_api, run_id, example("write-off-request.json"))
    wait_for(engine_api, run_id, "PENDING", "manager-approval")

    # Every path of billing-write-off v1 ends in a callback: after the manager approves, the
    # write-off still has to be posted, so it takes a third PUT to reach COMPLETE.
    update(engine_api, run_id, example("manager-approval.json"))
    wait_for(engine_api, run_id, "PENDING", "post-adjustment")

    update(engine_api, run_id, example("post-adjustment.json"))
    done = wait_for(engine_api, run_id, "COMPLETE")
    assert done["output"]["approval"]["decision"] == "approve"
    assert done["output"]["posting"]["adjustmentId"] == "ADJ-0048213"
