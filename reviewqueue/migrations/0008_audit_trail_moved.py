"""The audit trail moves to its own app (``audit``), chained: every existing event is copied in
its order, each linked to the one before, then the old table goes. A "Compliance" role may read
the trail and its report.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

from audit import chain

POSTGRES_OLD_TRIGGER_DROP = """
DROP TRIGGER reviewqueue_audit_append_only ON reviewqueue_auditevent;
DROP FUNCTION reviewqueue_audit_append_only();
"""
SQLITE_OLD_TRIGGER_DROP = "DROP TRIGGER reviewqueue_audit_append_only;"


def events_copy(apps, schema_editor):
    Old = apps.get_model("reviewqueue", "AuditEvent")
    New = apps.get_model("audit", "AuditEvent")
    Head = apps.get_model("audit", "AuditChainHead")
    head, _ = Head.objects.select_for_update().get_or_create(pk=1)
    copied = 0
    for old in Old.objects.order_by("pk").iterator(chunk_size=2000):
        new = New(
            at=old.at,
            actor_id=old.actor_id,
            action=old.action,
            item_id=old.item_id,
            flow_run_id=old.flow_run_id,
            ip=old.ip,
            detail=old.detail,
        )
        new.link = head.link = chain.link(head.link, chain.content_of(new))
        new.save(force_insert=True)
        copied += 1
    head.events += copied
    head.save()


def old_trigger_drop(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_OLD_TRIGGER_DROP)
    elif vendor == "sqlite":
        schema_editor.execute(SQLITE_OLD_TRIGGER_DROP)


ROLE_PERMISSIONS = {"Compliance": [("audit", "view_auditevent")]}


def compliance_role_create(apps, schema_editor):
    audit_app = apps.get_app_config("audit")
    audit_app.models_module = True
    create_permissions(audit_app, apps=apps, verbosity=0)
    audit_app.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, wanted in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=name)
        for app_label, codename in wanted:
            group.permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )
    # The old table's permissions and type would linger, granted to nobody.
    apps.get_model("contenttypes", "ContentType").objects.filter(
        app_label="reviewqueue", model="auditevent"
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("reviewqueue", "0007_route_not_by_earlier_answerers"),
        ("audit", "0001_initial"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.RunPython(events_copy, migrations.RunPython.noop),
        migrations.RunPython(old_trigger_drop, migrations.RunPython.noop),
        migrations.DeleteModel(name="AuditEvent"),
        migrations.RunPython(compliance_role_create, migrations.RunPython.noop),
    ]
