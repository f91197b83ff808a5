from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from reviewqueue import services


class Command(BaseCommand):
    help = "Load the demo content of `make run`: demo users, and the engine's demo templates."

    def handle(self, *args: object, **options: object) -> None:
        if settings.FLOWS_ENGINE_ENABLED:
            # By name, not by import: the review queue never imports the engine.
            call_command("engine_seed", stdout=self.stdout)
        for username in services.demo_users_ensure():
            self.stdout.write(f"created demo user {username}")
