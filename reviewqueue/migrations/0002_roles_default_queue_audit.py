"""The roles' groups, the default queue, and the audit table made append-only.

Permissions are normally created after all migrations run; ``create_permissions`` makes them now
so the groups can be given theirs on a fresh database.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ROLE_PERMISSIONS = {
    "Reviewer": [],
    "Supervisor": [("reviewqueue", "supervise_item")],
    "Flow admin": [
        (app, f"{verb}_{model}")
        for app, model, verbs in [
            ("flows_integration", "flowtemplate", ("add", "change", "view")),
            ("flows_integration", "templateversion", ("add", "view")),
            ("flows_integration", "flowrun", ("view",)),
            ("flows_integration", "webhookevent", ("view",)),
            ("flows_integration", "apihealth", ("view",)),
            ("flows_integration", "syncpass", ("view",)),
            ("reviewqueue", "queue", ("add", "change", "delete", "view")),
            ("reviewqueue", "route", ("add", "change", "delete", "view")),
            ("reviewqueue", "reviewitem", ("view",)),
            # The audit trail's view permission was here until the trail moved to its own app
            # (0008); reading it is now the Compliance role's.
        ]
        for verb in verbs
    ],
}

# UPDATE is refused everywhere; DELETE too on PostgreSQL. SQLite's test flush deletes rows one
# by one (PostgreSQL truncates, which row triggers do not see), so there DELETE stays allowed.
POSTGRES_AUDIT = """
CREATE FUNCTION reviewqueue_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER reviewqueue_audit_append_only BEFORE UPDATE OR DELETE ON reviewqueue_auditevent
    FOR EACH ROW EXECUTE FUNCTION reviewqueue_audit_append_only();
"""
POSTGRES_AUDIT_REVERSE = """
DROP TRIGGER reviewqueue_audit_append_only ON reviewqueue_auditevent;
DROP FUNCTION reviewqueue_audit_append_only();
"""
SQLITE_AUDIT = """
CREATE TRIGGER reviewqueue_audit_append_only BEFORE UPDATE ON reviewqueue_auditevent
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
"""
SQLITE_AUDIT_REVERSE = "DROP TRIGGER reviewqueue_audit_append_only;"


def roles_create(apps, schema_editor):
    for app_config in apps.get_app_configs():
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


def default_queue_create(apps, schema_editor):
    Queue = apps.get_model("reviewqueue", "Queue")
    Queue.objects.get_or_create(
        is_default=True,
        defaults={"name": "Unrouted", "description": "Items that no route names."},
    )


def audit_append_only(apps, schema_editor):
    sql = POSTGRES_AUDIT if schema_editor.connection.vendor == "postgresql" else SQLITE_AUDIT
    schema_editor.execute(sql)


def audit_append_only_reverse(apps, schema_editor):
    postgres = schema_editor.connection.vendor == "postgresql"
    schema_editor.execute(POSTGRES_AUDIT_REVERSE if postgres else SQLITE_AUDIT_REVERSE)


class Migration(migrations.Migration):
    dependencies = [
        ("reviewqueue", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.RunPython(roles_create, migrations.RunPython.noop),
        migrations.RunPython(default_queue_create, migrations.RunPython.noop),
        migrations.RunPython(audit_append_only, audit_append_only_reverse),
    ]
