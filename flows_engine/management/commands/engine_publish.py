from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

import flowspec
from flows_engine import services


class Command(BaseCommand):
    help = "Publish a template document (YAML or JSON) as the template's next version."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("template_id")
        parser.add_argument("path", type=Path)

    def handle(self, *args: object, template_id: str, path: Path, **options: object) -> None:
        try:
            version = services.version_publish(template_id=template_id, source=path.read_text())
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc}") from exc
        except flowspec.TemplateInvalid as exc:
            raise CommandError(f"{path} is not a valid template:\n{exc}") from exc
        self.stdout.write(f"published {version}")
