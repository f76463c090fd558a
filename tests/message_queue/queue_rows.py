"""Rows of the queue as the processors leave them, for the operator screens' tests."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

from django.utils import timezone

from connector.models import AuditEntry
from message_queue.models import Attempt, HourlyStats, Message, Status

_numbers = itertools.count(1)


def make_message(
    profile, *, sku: str = "", entity: str = "price", status: str = Status.PENDING, **fields
) -> Message:
    sku = sku or f"SKU{next(_numbers):05d}"
    now = timezone.now()
    defaults = {
        "key": f"{sku}|0" if entity == "price" else f"{sku}|default",
        "payload": {"sku": sku, "price": 12.5, "store_id": 0}
        if entity == "price"
        else {"sku": sku, "source_code": "default", "quantity": 7, "status": 1},
        "source_ts": 638465233453014192,
        "source_notification_id": "06284bdf-2952-4a9a-bf60-2ad0cd33924e",
    }
    if status == Status.SENT:
        defaults.update(sent_at=now, attempts=1, last_http_status=200)
    if status in (Status.FAILED, Status.SKIPPED):
        defaults.update(
            failed_at=now,
            attempts=3,
            last_http_status=400,
            last_error="Invalid attribute price = -1.",
        )
    defaults.update(fields)
    return Message.objects.create(
        profile=profile, entity=entity, sku=sku, status=status, **defaults
    )


def make_messages(profile, count: int, **fields) -> list[Message]:
    return [make_message(profile, **fields) for _ in range(count)]


def make_attempt(
    profile,
    messages,
    *,
    status_code: int = 200,
    ok: bool = True,
    error: str = "",
    duration_ms: float = 12.0,
    endpoint: str = "http://magento.test/rest/default/V1/products/base-prices",
    **fields,
) -> Attempt:
    attempt = Attempt.objects.create(
        profile=profile,
        entity=messages[0].entity,
        endpoint=endpoint,
        record_count=len(messages),
        status_code=status_code,
        ok=ok,
        error=error,
        duration_ms=duration_ms,
        **fields,
    )
    attempt.messages.set(messages)
    return attempt


def this_hour(back: int = 0) -> datetime:
    return timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=back)


def add_hourly_stats(profile, entity: str = "price", *, hours_ago: int = 0, **figures):
    return HourlyStats.objects.create(
        profile=profile, entity=entity, hour=this_hour(hours_ago), **figures
    )


def audit(kind: str, *, actor: str = "alice", profile=None, detail: str = "", **fields):
    return AuditEntry.objects.create(
        kind=kind, actor=actor, profile=profile, detail=detail, **fields
    )
