from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction

from audit.models import AuditEvent


def app_role_grants(role: str) -> list[str]:
    """What the role Flowdesk runs as may do: everything its pages and tasks need, and nothing
    to the audit trail but read and append. Run again after every migration: new tables need
    their grants."""
    quote = connection.ops.quote_name
    audit_table = quote(AuditEvent._meta.db_table)
    app = quote(role)
    return [
        f"GRANT USAGE ON SCHEMA public TO {app}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {app}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {app}",
        f"REVOKE UPDATE, DELETE, TRUNCATE ON {audit_table} FROM {app}",
        f"REVOKE TRUNCATE ON ALL TABLES IN SCHEMA public FROM {app}",
    ]


class Command(BaseCommand):
    help = (
        "PostgreSQL: give the role the application runs as what it needs, with no UPDATE, DELETE "
        "or TRUNCATE on the audit trail. Run as the owner that migrates, after every migrate."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("role", help="the application's role, e.g. flowdesk_app")
        parser.add_argument(
            "--print", action="store_true", help="print the statements instead of running them"
        )

    def handle(self, *args: Any, role: str, **options: Any) -> None:
        if connection.vendor != "postgresql":
            raise CommandError("Only PostgreSQL keeps the trail from the role that writes it.")
        statements = app_role_grants(role)
        if options["print"]:
            self.stdout.write(";\n".join(statements) + ";")
            return
        with transaction.atomic(), connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
        self.stdout.write(f"{role} may read and append to the audit trail, and no more.")
