from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

import flowspec
from flows_integration import services


class Command(BaseCommand):
    help = (
        "Store Flowdesk's copy of a template version the Flows server runs, from a file in the "
        "template language (for deployment pipelines). Sohar has no API that hands out its "
        "templates: this is how Flowdesk learns a version's callback states and their forms. "
        "The same checks as the admin's 'Store a template copy for forms'."
    )

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        # --version is the template version's, not Django's release (which it replaces).
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("template_id", help="The template's id on the Flows server.")
        parser.add_argument("file", type=Path, help="The document, YAML or JSON.")
        parser.add_argument(
            "--version",
            dest="number",
            type=int,
            default=None,
            help="The version number the Flows server shows (else the document's "
            "metadata.version).",
        )

    def handle(
        self, *args: object, template_id: str, file: Path, number: int | None, **_: object
    ) -> None:
        try:
            source = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"{file} cannot be read: {exc}") from exc
        try:
            flowspec.load_template(source)
        except flowspec.TemplateInvalid as exc:
            problems = "\n  ".join(str(error) for error in exc.errors)
            raise CommandError(f"{file} is not a valid template:\n  {problems}") from exc
        try:
            copy = services.version_copy_resolve(
                template_id=template_id, number=number, source=source
            )
        except services.CopyRefused as exc:
            raise CommandError(exc.message) from exc
        stored = services.version_store(
            template_id=template_id, number=copy.number, source=copy.source, name=copy.name
        )
        if copy.unchecked:
            self.stderr.write(f"{copy.unchecked}: stored as given.")
        self.stdout.write(f"stored {stored}")
