"""Supervisors and flow admins may start Runs; flow admins also manage the intake API's clients.

Permissions are normally created after all migrations run; ``create_permissions`` makes them now
so that the role groups (``reviewqueue.0002``) can be given them on a fresh database.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ROLE_PERMISSIONS = {
    "Supervisor": [("intake", "start_run")],
    "Flow admin": [
        ("intake", "start_run"),
        ("intake", "add_apiclient"),
        ("intake", "change_apiclient"),
        ("intake", "view_apiclient"),
        ("intake", "view_startedrun"),
    ],
}


def roles_grant(apps, schema_editor):
    app_config = apps.get_app_config("intake")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, wanted in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=name)
        for app_label, codename in wanted:
            group.permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )


class Migration(migrations.Migration):
    dependencies = [
        ("intake", "0001_initial"),
        ("reviewqueue", "0002_roles_default_queue_audit"),
    ]

    operations = [migrations.RunPython(roles_grant, migrations.RunPython.noop)]
