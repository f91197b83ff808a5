from typing import Any

from django.core.management.base import BaseCommand, CommandError

from audit.services import verify_chain


class Command(BaseCommand):
    help = "Walk the audit trail's hash chain; name the first broken link (exit 1) or say it holds."

    def handle(self, *args: Any, **options: Any) -> None:
        checked, broken = verify_chain()
        if broken is None:
            self.stdout.write(f"The audit trail holds: {checked} events, every link follows.")
            return
        if broken.event is None:
            raise CommandError(f"The audit trail is broken: {broken.reason}.")
        event = broken.event
        raise CommandError(
            f"The audit trail is broken at event {event.pk} ({event.action}, "
            f"{event.at:%Y-%m-%d %H:%M:%S %Z}), after {checked} good events: {broken.reason}."
        )
