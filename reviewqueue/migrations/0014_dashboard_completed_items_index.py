"""The supervisors' dashboard's answers joined to their completed items from an index alone
(issue 12)."""

from django.db import migrations, models

from config.migration_operations import AddIndexWithoutLocking


class Migration(migrations.Migration):
    # CREATE INDEX CONCURRENTLY on PostgreSQL, which runs outside a transaction.
    atomic = False
    dependencies = [
        ("reviewqueue", "0013_dashboard_indexes"),
    ]

    operations = [
        AddIndexWithoutLocking(
            model_name="reviewitem",
            index=models.Index(
                condition=models.Q(("status__in", ["delivered", "resumed"])),
                fields=["id", "queue", "version"],
                name="item_completed_queue_idx",
            ),
        ),
    ]
