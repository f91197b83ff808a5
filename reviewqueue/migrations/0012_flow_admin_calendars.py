"""Flow admins configure what a queue's work runs on: its reason codes (0010) and the business
calendars of its SLA clock (0011). Their group gets those models' permissions here; permissions
are made first, as in 0002, so that a fresh database has them."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ROLE_PERMISSIONS = {
    "Flow admin": [
        ("reviewqueue", f"{verb}_{model}")
        for model in ("reasoncode", "businesscalendar", "openinghours", "dayoff")
        for verb in ("add", "change", "delete", "view")
    ]
}


def _granted(apps):
    """(group, permissions) of each role that still exists (one may have been removed by hand)."""
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, wanted in ROLE_PERMISSIONS.items():
        group = Group.objects.filter(name=name).first()
        if group is not None:
            yield (
                group,
                [Permission.objects.get(content_type__app_label=a, codename=c) for a, c in wanted],
            )


def grant(apps, schema_editor):
    for group, permissions in _granted(apps):
        group.permissions.add(*permissions)


def revoke(apps, schema_editor):
    for group, permissions in _granted(apps):
        group.permissions.remove(*permissions)


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("reviewqueue", "0011_sla_notifications_strategies"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
