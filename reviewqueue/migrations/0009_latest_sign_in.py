import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    # Both: 0007 and 0008 were written side by side, each after 0006.
    dependencies = [
        ("reviewqueue", "0007_route_not_by_earlier_answerers"),
        ("reviewqueue", "0008_audit_trail_moved"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="LatestSignIn",
            fields=[
                (
                    "user",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="+",
                        serialize=False,
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                ("key", models.CharField(max_length=32)),
                ("signed_in_at", models.DateTimeField()),
            ],
            options={"verbose_name": "latest sign-in"},
        ),
    ]
