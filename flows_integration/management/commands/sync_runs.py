from django.core.management.base import BaseCommand, CommandParser

from flows_integration import services


class Command(BaseCommand):
    help = "Refresh every non-terminal run from the Flows server (what the beat task does)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--concurrency", type=int, default=None)
        parser.add_argument("--limit", type=int, default=None)

    def handle(self, *args: object, concurrency: int | None, limit: int | None, **options: object):
        sync_pass = services.reconcile(concurrency=concurrency, limit=limit)
        if sync_pass.skipped:
            self.stdout.write("skipped: another reconcile pass is running")
            return
        self.stdout.write(
            f"checked {sync_pass.runs_checked}, changed {sync_pass.runs_changed}, "
            f"failed {sync_pass.runs_failed}{' (throttled)' if sync_pass.throttled else ''} "
            f"in {sync_pass.duration_ms} ms"
        )
