from django.core.management.base import BaseCommand

from flows_engine import services
from flows_engine.models import Environment

DEMO_CLIENTS = [
    ("demo-sandbox", "demo-sandbox-secret", Environment.SANDBOX, "Demo sandbox client"),
    ("demo-production", "demo-production-secret", Environment.PRODUCTION, "Demo production client"),
]


class Command(BaseCommand):
    help = "Publish the engine's demo templates and create its demo API clients (idempotent)."

    def handle(self, *args: object, **options: object) -> None:
        for version in services.demo_seed():
            self.stdout.write(f"published {version}")
        for client_id, secret, environment, name in DEMO_CLIENTS:
            services.client_ensure(
                client_id=client_id, secret=secret, environment=environment, name=name
            )
        self.stdout.write("engine demo content is in place")
