"""Migration operations of our own, for tables that keep growing in production."""

from typing import Any

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db.migrations.operations import AddIndex, RemoveIndex


class _ConcurrentlyOnPostgreSQL:
    """The ``CONCURRENTLY`` operation on PostgreSQL, ``plain`` elsewhere (SQLite under
    ``make run``, which has no such thing)."""

    plain: Any

    def database_forwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)  # type: ignore[misc]
        else:
            self.plain.database_forwards(self, app_label, schema_editor, from_state, to_state)

    def database_backwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)  # type: ignore[misc]
        else:
            self.plain.database_backwards(self, app_label, schema_editor, from_state, to_state)


class AddIndexWithoutLocking(_ConcurrentlyOnPostgreSQL, AddIndexConcurrently):
    """``CREATE INDEX CONCURRENTLY`` on PostgreSQL: a table of millions of rows (the Runs'
    mirror, items, the audit trail) goes on taking writes while its index builds, so a release's
    ``migrate`` does not stall the staff still working on the previous release. Elsewhere
    (SQLite under ``make run``) a plain index. The migration must say ``atomic = False``.

    A build that fails half-way leaves an INVALID index behind: drop it and migrate again."""

    plain = AddIndex


class RemoveIndexWithoutLocking(_ConcurrentlyOnPostgreSQL, RemoveIndexConcurrently):
    """``DROP INDEX CONCURRENTLY`` on PostgreSQL (writes go on meanwhile), a plain drop
    elsewhere. The migration must say ``atomic = False``."""

    plain = RemoveIndex
