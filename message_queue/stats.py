"""The processors' running totals per hour: one upsert per HTTP call."""

from __future__ import annotations

from django.db.models import F
from django.utils import timezone

from message_queue.models import HourlyStats


def count_call(profile, entity: str, *, sent: int = 0, failed: int = 0, skipped: int = 0,
               call_failed: bool = False) -> None:
    now = timezone.now()
    hour = now.replace(minute=0, second=0, microsecond=0)
    HourlyStats.objects.get_or_create(profile=profile, entity=entity, hour=hour)
    changes = {
        "calls": F("calls") + 1,
        "sent": F("sent") + sent,
        "failed": F("failed") + failed,
        "skipped": F("skipped") + skipped,
        "failed_calls": F("failed_calls") + int(call_failed),
    }
    if sent:
        changes["last_sent_at"] = now
    HourlyStats.objects.filter(profile=profile, entity=entity, hour=hour).update(**changes)
