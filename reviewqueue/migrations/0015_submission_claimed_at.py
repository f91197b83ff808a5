"""Each answer keeps when its submitter's claim began (handle time), so that the dashboard and
the exports stop looking it up in the audit trail answer by answer; the delivered answers'
index covers it, so the dashboard's handle times are read from the index alone."""

from django.db import migrations, models
from django.db.models import OuterRef, Subquery

from config.migration_operations import AddIndexWithoutLocking, RemoveIndexWithoutLocking


def claims_from_the_audit_trail(apps, schema_editor):
    """The answers given before this release: their submitter's latest claim at or before each,
    from the audit trail, as the dashboard used to compute it. One statement."""
    Submission = apps.get_model("reviewqueue", "Submission")
    AuditEvent = apps.get_model("audit", "AuditEvent")
    latest_claim = (
        AuditEvent.objects.filter(
            action="item.claimed",
            item_id=OuterRef("item_id"),
            actor_id=OuterRef("submitted_by_id"),
            at__lte=OuterRef("created_at"),
        )
        .order_by("-at")
        .values("at")[:1]
    )
    Submission.objects.filter(claimed_at__isnull=True).update(claimed_at=Subquery(latest_claim))


class Migration(migrations.Migration):
    # The indexes are built and dropped CONCURRENTLY on PostgreSQL, outside a transaction.
    atomic = False
    dependencies = [
        ("reviewqueue", "0014_dashboard_completed_items_index"),
        ("audit", "0002_item_claims_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="submission",
            name="claimed_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(claims_from_the_audit_trail, migrations.RunPython.noop),
        AddIndexWithoutLocking(
            model_name="submission",
            index=models.Index(
                condition=models.Q(("status", "delivered")),
                fields=["finished_at", "item", "submitted_by", "created_at", "claimed_at"],
                name="submission_delivered_claim_idx",
            ),
        ),
        RemoveIndexWithoutLocking(model_name="submission", name="submission_delivered_idx"),
    ]
