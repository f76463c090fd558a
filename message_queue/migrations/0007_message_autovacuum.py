"""PostgreSQL: vacuum the message table often. Every message is updated twice (claimed, then
settled), leaving dead index entries that the claim query would otherwise wade through."""

from django.db import migrations

AUTOVACUUM = (
    "ALTER TABLE message_queue_message SET (autovacuum_vacuum_scale_factor = 0.02, "
    "autovacuum_analyze_scale_factor = 0.02, autovacuum_vacuum_cost_delay = 1)"
)
RESET = (
    "ALTER TABLE message_queue_message RESET (autovacuum_vacuum_scale_factor, "
    "autovacuum_analyze_scale_factor, autovacuum_vacuum_cost_delay)"
)


def tune(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(AUTOVACUUM)


def untune(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(RESET)


class Migration(migrations.Migration):
    dependencies = [("message_queue", "0006_pull_loads_and_reconciliation")]

    operations = [migrations.RunPython(tune, untune)]
