import json
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from flows_integration import client as flows_client
from intake import services
from intake.models import Source


class Command(BaseCommand):
    help = (
        "Start a Run of TEMPLATE with the inputData in a JSON file, checked against the stored "
        "version's input schema first; prints the flowRunId."
    )

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        # `--version N` names the template version, as scripts expect; Django's own --version
        # (its release number) gives way.
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("template", help="The template's id, as stored in Flowdesk.")
        parser.add_argument(
            "--input",
            required=True,
            type=Path,
            help="A JSON file: the Run's inputData ('-' reads stdin).",
        )
        parser.add_argument(
            "--version", type=int, dest="number", help="A stored version (default: the latest)."
        )

    def handle(
        self, *args: object, template: str, input: Path, number: int | None, **options: object
    ) -> None:
        try:
            # call_command passes the option as given, without argparse's type.
            text = sys.stdin.read() if str(input) == "-" else Path(input).read_text()
            input_data = json.loads(text)
        except (OSError, ValueError) as exc:
            raise CommandError(f"cannot read the input JSON from {input}: {exc}") from exc
        try:
            started = services.run_start(
                template_id=template, version=number, input_data=input_data, source=Source.COMMAND
            ).started
        except services.StartRefused as exc:
            problems = "\n".join(f"  {param}: {message}" for param, message in exc.errors)
            raise CommandError(f"the input is not valid; nothing was started:\n{problems}") from exc
        except flows_client.FlowsError as exc:
            if exc.outcome_unknown:
                raise CommandError(
                    f"Flows did not confirm the start ({exc}); the Run may exist: check before "
                    "you start it again"
                ) from exc
            raise CommandError(f"Flows refused the start; nothing was started: {exc}") from exc
        assert started.flow_run is not None
        self.stdout.write(str(started.flow_run.flow_run_id))
