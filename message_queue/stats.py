"""Running totals per (profile, entity, hour), kept by the receiver and the processors so the
dashboard never counts the message table. Each update is one upsert statement."""

from __future__ import annotations

from django.db import connection
from django.utils import timezone

from message_queue.models import Entity, HourlyStats

COUNTERS = ("calls", "sent", "failed", "skipped", "failed_calls", "unmapped_warehouse_rows")


def _add(profile, entity: str, *, set_values: dict | None = None, **increments: int) -> None:
    now = timezone.now()
    hour = now.replace(minute=0, second=0, microsecond=0)
    table = HourlyStats._meta.db_table
    counters = {name: increments.get(name, 0) for name in COUNTERS}
    values = {**counters, **(set_values or {})}
    columns = ", ".join(["profile_id", "entity", "hour", *values])
    placeholders = ", ".join(["%s"] * (3 + len(values)))
    updates = [f"{name} = {table}.{name} + excluded.{name}" for name in counters]
    updates += [f"{name} = excluded.{name}" for name in (set_values or {})]
    sql = (
        f"INSERT INTO {table} ({columns}) VALUES ({placeholders}) "
        f"ON CONFLICT (profile_id, entity, hour) DO UPDATE SET {', '.join(updates)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [profile.pk, entity, hour, *values.values()])


def count_call(profile, entity: str, *, sent: int = 0, failed: int = 0, skipped: int = 0,
               call_failed: bool = False) -> None:
    _add(
        profile, entity,
        set_values={"last_sent_at": timezone.now()} if sent else None,
        calls=1, sent=sent, failed=failed, skipped=skipped, failed_calls=int(call_failed),
    )


def count_unmapped_warehouse_rows(profile, rows: int) -> None:
    if rows:
        _add(profile, Entity.INVENTORY, unmapped_warehouse_rows=rows)


def note_backlog(profile, entity: str, pending: int) -> None:
    """The pending count after a pass: the dashboard chart's backlog line."""
    _add(profile, entity, set_values={"backlog": pending})
