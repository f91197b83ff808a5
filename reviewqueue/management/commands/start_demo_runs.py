from django.core.management.base import BaseCommand, CommandParser

from flows_integration import client as flows_client
from flows_integration import services as integration
from flows_integration.models import FlowRun
from reviewqueue import demo_history

# Made-up people: every name and number here is fictitious. Each input pauses its Run at a
# callback state (docs/engine-products.md says which sandbox answers lead where).
DEMO_RUNS: list[tuple[str, dict]] = [
    (
        "prior-authorization",
        {
            "patient": {
                "firstName": "Maria",
                "lastName": "Lopez",
                "dateOfBirth": "1980-02-29",
                "memberId": "W123456789",
            },
            "payerId": "60054",
            "provider": {"npi": "1234567890", "name": "Lakeside Orthopedics"},
            "procedureCodes": ["27447"],
            "serviceDate": "2027-01-15",
            "urgency": "expedited",
            "clinicalNotes": "Severe osteoarthritis of the right knee; failed 6 months of therapy.",
        },
    ),
    (
        "prior-authorization",
        {
            "patient": {
                "firstName": "James",
                "lastName": "Okafor",
                "dateOfBirth": "1975-07-04",
                "memberId": "U987654321",
            },
            "payerId": "87726",
            "provider": {"npi": "1098765432"},
            "procedureCodes": ["72148"],
            "serviceDate": "2027-02-01",
        },
    ),
    (
        "coverage-check",
        {
            "patient": {"firstName": "Ana", "lastName": "Notfound", "dateOfBirth": "1990-05-12"},
            "payerId": "62308",
        },
    ),
    (
        "coverage-check",
        {
            "patient": {"firstName": "Lee", "lastName": "Lapsed", "dateOfBirth": "1964-11-30"},
            "payerId": "61101",
        },
    ),
    (
        "billing-write-off",
        {
            "patient": {
                "firstName": "Grace",
                "lastName": "Ng",
                "dateOfBirth": "1988-03-08",
                "accountNumber": "ACC-20931",
            },
            "payerId": "47198",
            "provider": {"npi": "1234567890"},
            "claim": {
                "claimId": "CLM-88213",
                "serviceDate": "2026-09-14",
                "procedureCodes": ["99213"],
                "billedAmount": 240.0,
                "balance": 85.5,
            },
        },
    ),
]


class Command(BaseCommand):
    help = "Start a few demo Runs that pause for staff, so the queue has work on first login."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--if-empty", action="store_true", help="Do nothing when any Run is mirrored already."
        )

    def handle(self, *args: object, if_empty: bool, **options: object) -> None:
        # The demo's history (load_demo) is no Run of the engine's: it does not count here.
        live = FlowRun.objects.exclude(flow_run_id__in=demo_history.history_run_ids())
        if if_empty and live.exists():
            return
        for template_id, input_data in DEMO_RUNS:
            try:
                run = integration.run_create(template_id=template_id, input_data=input_data)
            except flows_client.FlowsError as exc:
                self.stderr.write(f"could not start a {template_id} run: {exc}")
                continue
            self.stdout.write(f"started {template_id} run {run.flow_run_id}")
