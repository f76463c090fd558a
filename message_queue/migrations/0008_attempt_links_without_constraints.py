"""Attempt.messages gets an explicit link model on the same table, whose rows carry no
foreign-key constraints and no index of their own on attempt_id (the unique pair starts
with it). On PostgreSQL the constraints and that index are dropped; SQLite keeps its table
as it is (its checks are cheap, and its table cannot drop a constraint in place)."""

import django.db.models.deletion
from django.db import migrations, models

LINKS = "message_queue_attempt_messages"


def drop_link_checks(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'f'",
            [LINKS],
        )
        for (name,) in cursor.fetchall():
            schema_editor.execute(f'ALTER TABLE {LINKS} DROP CONSTRAINT "{name}"')
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = %s "
            "AND indexdef LIKE '%%(attempt_id)'",
            [LINKS],
        )
        for (name,) in cursor.fetchall():
            schema_editor.execute(f'DROP INDEX "{name}"')


class Migration(migrations.Migration):
    dependencies = [("message_queue", "0007_message_autovacuum")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="AttemptMessage",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True,
                                                   serialize=False, verbose_name="ID")),
                        ("attempt", models.ForeignKey(
                            db_constraint=False, db_index=False,
                            on_delete=django.db.models.deletion.CASCADE,
                            to="message_queue.attempt")),
                        ("message", models.ForeignKey(
                            db_constraint=False,
                            on_delete=django.db.models.deletion.CASCADE,
                            to="message_queue.message")),
                    ],
                    options={"db_table": LINKS, "unique_together": {("attempt", "message")}},
                ),
                migrations.AlterField(
                    model_name="attempt",
                    name="messages",
                    field=models.ManyToManyField(blank=True, related_name="attempt_set",
                                                 through="message_queue.AttemptMessage",
                                                 to="message_queue.message"),
                ),
            ],
            database_operations=[migrations.RunPython(drop_link_checks, migrations.RunPython.noop)],
        ),
    ]
