"""The supervisors' dashboard at a million Runs (issue 12): items open now, opened and closed per
queue and hour, open items by age and due time, and answers delivered in a period, each read from
an index alone."""

from django.db import migrations, models

from config.migration_operations import AddIndexWithoutLocking


class Migration(migrations.Migration):
    # CREATE INDEX CONCURRENTLY on PostgreSQL, which runs outside a transaction.
    atomic = False
    dependencies = [
        ("reviewqueue", "0012_flow_admin_calendars"),
    ]

    operations = [
        AddIndexWithoutLocking(
            model_name="reviewitem",
            index=models.Index(fields=["opened_at", "queue"], name="item_opened_queue_idx"),
        ),
        AddIndexWithoutLocking(
            model_name="reviewitem",
            index=models.Index(
                fields=["closed_at", "queue", "opened_at"], name="item_closed_queue_idx"
            ),
        ),
        AddIndexWithoutLocking(
            model_name="reviewitem",
            index=models.Index(
                fields=["queue", "status", "opened_at", "due_at"],
                condition=models.Q(("status__in", ["claimed", "needs_attention", "open"])),
                name="item_supervising_counts_idx",
            ),
        ),
        AddIndexWithoutLocking(
            model_name="submission",
            index=models.Index(
                fields=["finished_at", "item", "submitted_by", "created_at"],
                condition=models.Q(("status", "delivered")),
                name="submission_delivered_idx",
            ),
        ),
    ]
