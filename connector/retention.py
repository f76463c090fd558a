"""Retention: the database keeps what an operator may still act on, and forgets the rest.

`purge_old_rows` runs hourly (beat's `connector-retention` → `connector.tasks`):

1. Messages that are done (`sent`, `superseded`, `dismissed`) and unchanged for
   CONNECTOR_RETENTION_DAYS are deleted, with their links to attempts. `failed` and `skipped`
   stay until reprocessed or dismissed; `pending` and `processing` are never touched.
2. Attempts older than the retention that no message links to any more are deleted: the
   attempts of the messages just deleted, and calls made for no message (probes).
3. Received push notification ids older than the retention are deleted: they deduplicate
   Acumatica's resends, which stop after 2 days.
4. Hourly statistics older than CONNECTOR_STATS_RETENTION_DAYS are deleted.

Each step deletes `batch_size` rows per statement, oldest id first, and commits between
batches, so no transaction holds many locks for long and a purge interrupted halfway keeps
what it did.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from message_queue.models import Attempt, HourlyStats, Message, ReceivedNotification, Status

logger = logging.getLogger(__name__)

BATCH_SIZE = 5000
DONE_STATUSES = [Status.SENT, Status.SUPERSEDED, Status.DISMISSED]
# Attempt.messages' link table: a message's links go with it, in the same batch.
AttemptLink = Attempt.messages.through


def purge_old_rows(now: datetime | None = None, batch_size: int = BATCH_SIZE) -> dict[str, int]:
    """Delete what is past its retention (see the module's docstring); counts per kind."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.CONNECTOR_RETENTION_DAYS)
    stats_cutoff = now - timedelta(days=settings.CONNECTOR_STATS_RETENTION_DAYS)
    deleted = {
        "messages": delete_in_batches(
            Message.objects.filter(status__in=DONE_STATUSES, updated_at__lt=cutoff),
            batch_size,
            unlink=lambda batch: AttemptLink.objects.filter(message__in=batch).delete(),
        ),
        "attempts": delete_in_batches(
            Attempt.objects.filter(created_at__lt=cutoff, messages__isnull=True), batch_size
        ),
        "received_notifications": delete_in_batches(
            ReceivedNotification.objects.filter(received_at__lt=cutoff), batch_size
        ),
        "hourly_stats": delete_in_batches(
            HourlyStats.objects.filter(hour__lt=stats_cutoff), batch_size
        ),
    }
    logger.info("Retention: deleted %s", ", ".join(f"{n} {kind}" for kind, n in deleted.items()))
    return deleted


def delete_in_batches(
    rows: QuerySet, batch_size: int, unlink: Callable[[QuerySet], object] | None = None
) -> int:
    """Delete the rows `batch_size` at a time, one transaction per batch.

    1. Read the next `batch_size` ids after the last batch's (rows the filter keeps are not
       read again).
    2. Delete the rows that still match the filter in that id range: first what links to them
       (`unlink`), then the rows in one statement. A row that changed meanwhile is left alone.

    Django's `delete()` would load every row and delete a hundred ids per statement; with the
    links gone first nothing else refers to these rows, so a raw delete is safe (and a new
    foreign key to them would fail the statement loudly, not orphan rows).
    """
    deleted = 0
    last_id = 0
    while True:
        ids = list(
            rows.filter(id__gt=last_id).order_by("id").values_list("id", flat=True)[:batch_size]
        )
        if not ids:
            return deleted
        batch = rows.filter(id__gte=ids[0], id__lte=ids[-1])
        with transaction.atomic(using=rows.db):
            if unlink is not None:
                unlink(batch.values("id"))
            deleted += batch._raw_delete(rows.db)
        last_id = ids[-1]
