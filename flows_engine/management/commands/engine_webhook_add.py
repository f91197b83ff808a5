from django.core.management.base import BaseCommand, CommandParser

from flows_engine import webhooks
from flows_engine.models import Environment


class Command(BaseCommand):
    help = "Register a webhook endpoint with the engine (idempotent) and print its secret."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("url")
        parser.add_argument("--environment", choices=Environment.values, default="sandbox")
        parser.add_argument("--secret", help="a whsec_ secret; generated when left out")
        parser.add_argument("--description", default="")

    def handle(self, *args: object, **options: str) -> None:
        endpoint = webhooks.endpoint_register(
            url=options["url"],
            environment=options["environment"],
            secret=options["secret"],
            description=options["description"],
        )
        shown = endpoint.secret if not options["secret"] else "as given"
        self.stdout.write(
            f"webhook endpoint {endpoint.url} ({endpoint.environment}), secret {shown}"
        )
