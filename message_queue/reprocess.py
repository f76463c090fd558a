"""Reprocess Failed Messages: send chosen failed or skipped messages again, or dismiss them."""

from __future__ import annotations

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from connector.models import AuditEntry
from message_queue.models import Message, Status


@transaction.atomic
def reprocess(messages: QuerySet[Message], *, user=None, actor: str = "", profile=None) -> int:
    """Attempts reset, back to `pending`; merged into a newer pending row of the key if any."""
    now = timezone.now()
    who = user.get_username() if user is not None and user.is_authenticated else actor or "system"
    chosen = list(
        messages.failed_or_skipped().select_for_update().order_by("id").values_list(
            "id", "profile_id", "entity", "key"
        )
    )
    if not chosen:
        return 0
    pending_keys = set(
        Message.objects.filter(
            status=Status.PENDING,
            profile_id__in={row[1] for row in chosen},
            key__in={row[3] for row in chosen},
        ).values_list("profile_id", "entity", "key")
    )
    merged, revived, seen = [], [], set()
    for message_id, profile_id, entity, key in chosen:
        identity = (profile_id, entity, key)
        if identity in pending_keys or identity in seen:
            merged.append(message_id)
        else:
            revived.append(message_id)
            seen.add(identity)
    common = {"reprocessed_at": now, "reprocessed_by": who, "updated_at": now}
    Message.objects.filter(id__in=merged).update(
        status=Status.SUPERSEDED, lease_until=None, **common
    )
    Message.objects.filter(id__in=revived).update(
        status=Status.PENDING, attempts=0, next_attempt_at=now, lease_until=None,
        failed_at=None, **common,
    )
    AuditEntry.record(
        AuditEntry.Kind.REPROCESS, user=user, actor=actor, profile=profile,
        detail=f"{len(chosen)} messages reprocessed ({len(merged)} merged into a newer pending "
        f"change): ids {_id_list(m[0] for m in chosen)}",
    )
    return len(chosen)


@transaction.atomic
def dismiss(messages: QuerySet[Message], reason: str, *, user=None, actor: str = "",
            profile=None) -> int:
    if not reason.strip():
        raise ValueError("Give a reason for dismissing the messages.")
    now = timezone.now()
    ids = list(messages.failed_or_skipped().values_list("id", flat=True))
    count = Message.objects.filter(id__in=ids).update(
        status=Status.DISMISSED, dismissed_reason=reason.strip(), updated_at=now,
        lease_until=None,
    )
    AuditEntry.record(
        AuditEntry.Kind.DISMISS, user=user, actor=actor, profile=profile,
        detail=f"{count} messages dismissed: {reason.strip()} (ids {_id_list(ids)})",
    )
    return count


def _id_list(ids, shown: int = 50) -> str:
    ids = list(ids)
    text = ", ".join(str(i) for i in ids[:shown])
    return text + (f" and {len(ids) - shown} more" if len(ids) > shown else "")
