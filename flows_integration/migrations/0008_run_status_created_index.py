"""The dashboard's Runs by status (Runs not finished, and those finished in a period) and Runs
waiting in triage, each counted from an index alone."""

from django.db import migrations, models

from config.migration_operations import AddIndexWithoutLocking


class Migration(migrations.Migration):
    # CREATE INDEX CONCURRENTLY on PostgreSQL, which runs outside a transaction.
    atomic = False
    dependencies = [
        ("flows_integration", "0007_template_names"),
    ]

    operations = [
        AddIndexWithoutLocking(
            model_name="flowrun",
            index=models.Index(
                fields=["status", "created_at"], name="mirror_run_status_created_idx"
            ),
        ),
        AddIndexWithoutLocking(
            model_name="flowrun",
            index=models.Index(
                fields=["id"],
                condition=models.Q(("status", "PENDING")),
                name="mirror_run_pending_idx",
            ),
        ),
    ]
