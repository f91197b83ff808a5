from django.core.management.base import BaseCommand, CommandError

from flows_integration import client as flows_client
from flows_integration import services


class Command(BaseCommand):
    help = "Import every template version the Flows server lists (our extension endpoints)."

    def handle(self, *args: object, **options: object) -> None:
        try:
            imported = services.templates_import()
        except flows_client.NotSupported as exc:
            raise CommandError("this Flows server does not list its templates") from exc
        except flows_client.FlowsError as exc:
            raise CommandError(f"the Flows server could not be asked: {exc}") from exc
        for version in imported:
            self.stdout.write(f"imported {version}")
        self.stdout.write(f"{len(imported)} new version(s)")
