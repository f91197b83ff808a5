"""Handle times at a million Runs (issue 12): each answer's latest claim by its submitter, read
from a partial index of the claims alone rather than every event of the item."""

from django.conf import settings
from django.db import migrations, models

from config.migration_operations import AddIndexWithoutLocking


class Migration(migrations.Migration):
    # CREATE INDEX CONCURRENTLY on PostgreSQL, which runs outside a transaction.
    atomic = False
    dependencies = [
        ("audit", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        AddIndexWithoutLocking(
            model_name="auditevent",
            index=models.Index(
                condition=models.Q(("action", "item.claimed")),
                fields=["item_id", "actor", "at"],
                name="audit_item_claims_idx",
            ),
        ),
    ]
