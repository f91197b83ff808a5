"""Templates made by a route before any version was stored kept an empty name, so pages showed
their bare ids: name them from their latest stored version's document."""

from django.db import migrations


def templates_name(apps, schema_editor):
    FlowTemplate = apps.get_model("flows_integration", "FlowTemplate")
    for template in FlowTemplate.objects.filter(name=""):
        latest = template.versions.order_by("-number").first()
        name = (latest.document.get("metadata") or {}).get("name") if latest else None
        if name:
            template.name = str(name)[:200]
            template.save(update_fields=["name"])


class Migration(migrations.Migration):
    dependencies = [("flows_integration", "0006_run_created_index")]

    operations = [migrations.RunPython(templates_name, migrations.RunPython.noop)]
