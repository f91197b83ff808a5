from argparse import BooleanOptionalAction

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from reviewqueue import demo, demo_history


class Command(BaseCommand):
    help = (
        "Load the demo content of `make run`: demo users with their roles and teams, demo "
        "queues, routes and reason codes, two weeks of finished work for the dashboard, the "
        "engine's demo templates, and Flowdesk's webhook receiver "
        "registered with the engine. Against a real Flows API (FLOWDESK_DEMO off, the default "
        "when FLOWS_API_URL is set) it loads nothing unless --demo is given."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--base-url",
            default="http://127.0.0.1:8000",
            help="Where this Flowdesk answers, for the engine's webhooks.",
        )
        parser.add_argument(
            "--demo",
            dest="demo_content",
            action=BooleanOptionalAction,
            default=None,
            help="Create the demo logins and queues (default: the FLOWDESK_DEMO setting).",
        )
        parser.add_argument(
            "--history",
            action=BooleanOptionalAction,
            default=None,
            help="Add two weeks of finished work for the supervisors' dashboard, once (default: "
            "on for `make run`'s demo, where FLOWDESK_DEMO is on and the engine is embedded; "
            "off when the demo content is asked for with --demo, as the benchmarks do).",
        )

    def handle(
        self,
        *args: object,
        base_url: str,
        demo_content: bool | None,
        history: bool | None,
        **options: object,
    ) -> None:
        if settings.PRODUCTION:
            # Demo logins have published passwords, and the demo webhook secret is in the README.
            raise CommandError(
                "load_demo refuses to run with FLOWDESK_MODE=production: its logins and "
                "secrets are public. Create the first login with "
                "`python manage.py createsuperuser`."
            )
        if not (settings.FLOWDESK_DEMO if demo_content is None else demo_content):
            self.stdout.write(
                "No demo content: Flowdesk is pointed at a real Flows API "
                f"({settings.FLOWS_API_URL}). Create the first login with "
                "`python manage.py createsuperuser`."
            )
            return
        if settings.FLOWS_ENGINE_ENABLED:
            # By name, not by import: the review queue never imports the engine.
            call_command("engine_seed", stdout=self.stdout)
            for environment in ("sandbox", "production"):
                call_command(
                    "engine_webhook_add",
                    f"{base_url.rstrip('/')}/flows/webhooks/",
                    environment=environment,
                    secret=settings.FLOWS_WEBHOOK_SECRET,
                    description="Flowdesk (make run)",
                    stdout=self.stdout,
                )
        for username in demo.demo_users_ensure():
            self.stdout.write(f"created demo user {username}")
        for queue in demo.demo_queues_ensure():
            self.stdout.write(f"demo queue {queue.name}")
        demo.demo_reasons_ensure()
        if history is None:
            # Mirror rows of Runs the embedded engine is taken to have run: not for a world
            # that measures the mirror's own Runs (bench), nor for another Flows server.
            history = settings.FLOWDESK_DEMO and settings.FLOWS_ENGINE_ENABLED
        # Two weeks of finished work for the supervisors' dashboard, on the first load only.
        made = demo_history.demo_history_ensure(now=timezone.now()) if history else 0
        if made:
            self.stdout.write(f"demo history: {made} items over the last {demo_history.DAYS} days")
