"""What the operator screens read: the queue dashboard's figures, message search, the failed
list and the audit log.

The dashboard stays fast on a large table: it counts only the small statuses (pending,
processing, failed, skipped, dismissed) through `message_status_idx`, and takes everything
about sent messages from `HourlyStats`, which the processors keep. It never counts `sent` or
`superseded` rows.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.db.models import Count, Max, Min, Q, QuerySet
from django.utils import timezone

from connector.models import AuditEntry
from message_queue.models import Entity, HourlyStats, Message, OutageGuard, Status
from setup_params.models import Profile

COUNTED_STATUSES = [
    Status.PENDING, Status.PROCESSING, Status.FAILED, Status.SKIPPED, Status.DISMISSED,
]
CHART_HOURS = 24


# --- the queue dashboard ---------------------------------------------------------------------


@dataclass
class EntitySummary:
    """One (profile, entity) row of the dashboard."""

    profile: str
    entity: str
    entity_label: str
    counts: dict[str, int] = field(default_factory=dict)
    oldest_pending_at: datetime | None = None
    last_sent_at: datetime | None = None
    sent_last_hour: int = 0
    failed_last_hour: int = 0
    sent_24h: int = 0
    failed_24h: int = 0
    failed_calls_24h: int = 0
    unmapped_warehouse_rows_24h: int = 0
    outage_error: str | None = None

    @property
    def pending(self) -> int:
        return self.counts.get(Status.PENDING, 0)


@dataclass
class ProfileSummary:
    name: str
    state: str
    state_label: str
    state_changed_at: datetime
    state_changed_by: str
    entities: list[EntitySummary] = field(default_factory=list)


@dataclass
class HourlyChart:
    """Sends, failures and backlog per hour over the last 24 hours, oldest first."""

    hours: list[datetime]
    sent: list[int]
    failed: list[int]
    backlog: list[int | None]


@dataclass
class QueueSummary:
    generated_at: datetime
    last_hour_since: datetime
    profiles: list[ProfileSummary]
    chart: HourlyChart

    @property
    def rows(self) -> list[EntitySummary]:
        return [row for profile in self.profiles for row in profile.entities]

    @property
    def is_empty(self) -> bool:
        """Nothing waiting, nothing failed, nothing ever sent: time for the getting-started text."""
        return not any(any(row.counts.values()) or row.last_sent_at for row in self.rows)


def hour_start(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


Rows = dict[tuple[int, str], EntitySummary]


def queue_summary(now: datetime | None = None) -> QueueSummary:
    """The dashboard in five small queries:
    1. the profiles;
    2. per (profile, entity) the counts of the small statuses and the oldest pending;
    3. the hourly totals of the last 24 h (the table's figures and the chart);
    4. each entity's last successful send;
    5. the tripped outage guards.
    """
    now = now or timezone.now()
    profiles = list(Profile.objects.order_by("name"))
    summaries = [profile_summary(profile) for profile in profiles]
    rows: Rows = {
        (profile.id, row.entity): row
        for profile, summary in zip(profiles, summaries, strict=True)
        for row in summary.entities
    }
    add_status_counts(rows, [profile.id for profile in profiles])
    last_hour_since = hour_start(now) - timedelta(hours=1)
    chart = add_hourly_totals(rows, hour_start(now), last_hour_since)
    add_last_sends(rows)
    add_outages(rows)
    # The current hour's backlog is known exactly: the pending count of the table.
    chart.backlog[-1] = sum(row.pending for row in rows.values())
    return QueueSummary(
        generated_at=now, last_hour_since=last_hour_since, profiles=summaries, chart=chart
    )


def profile_summary(profile: Profile) -> ProfileSummary:
    return ProfileSummary(
        name=profile.name, state=profile.state, state_label=profile.get_state_display(),
        state_changed_at=profile.state_changed_at, state_changed_by=profile.state_changed_by,
        entities=[
            EntitySummary(profile=profile.name, entity=value, entity_label=label)
            for value, label in Entity.choices
        ],
    )


def add_status_counts(rows: Rows, profile_ids: list[int]) -> None:
    for profile_id, entity, status, count, oldest in status_counts(profile_ids):
        if row := rows.get((profile_id, entity)):
            row.counts[status] = count
            if status == Status.PENDING:
                row.oldest_pending_at = oldest


def add_hourly_totals(rows: Rows, current_hour: datetime,
                      last_hour_since: datetime) -> HourlyChart:
    hours = [current_hour - timedelta(hours=back) for back in range(CHART_HOURS - 1, -1, -1)]
    chart = HourlyChart(hours=hours, sent=[0] * CHART_HOURS, failed=[0] * CHART_HOURS,
                        backlog=[None] * CHART_HOURS)
    position = {hour: index for index, hour in enumerate(hours)}
    for stats in HourlyStats.objects.filter(hour__gte=hours[0]):
        index = position.get(stats.hour)
        if index is not None:
            chart.sent[index] += stats.sent
            chart.failed[index] += stats.failed
            if stats.backlog is not None:
                chart.backlog[index] = (chart.backlog[index] or 0) + stats.backlog
        if row := rows.get((stats.profile_id, stats.entity)):
            row.sent_24h += stats.sent
            row.failed_24h += stats.failed
            row.failed_calls_24h += stats.failed_calls
            row.unmapped_warehouse_rows_24h += stats.unmapped_warehouse_rows
            if stats.hour >= last_hour_since:
                row.sent_last_hour += stats.sent
                row.failed_last_hour += stats.failed
    return chart


def add_last_sends(rows: Rows) -> None:
    last_sends = (
        HourlyStats.objects.filter(last_sent_at__isnull=False)
        .values_list("profile_id", "entity")
        .annotate(last=Max("last_sent_at"))
        .order_by()
    )
    for profile_id, entity, last_sent_at in last_sends:
        if row := rows.get((profile_id, entity)):
            row.last_sent_at = last_sent_at


def add_outages(rows: Rows) -> None:
    tripped = OutageGuard.objects.filter(tripped=True)
    for profile_id, entity, last_error in tripped.values_list("profile_id", "entity",
                                                               "last_error"):
        if row := rows.get((profile_id, entity)):
            row.outage_error = last_error


def status_counts(profile_ids: list[int]) -> Iterable[tuple[int, str, str, int, datetime]]:
    """(profile id, entity, status, count, oldest created_at) for the small statuses only.

    Naming every profile, entity and status lets PostgreSQL walk `message_status_idx` for
    just those combinations instead of reading the sent rows.
    """
    return (
        Message.objects.filter(
            profile_id__in=profile_ids, entity__in=Entity.values, status__in=COUNTED_STATUSES
        )
        .values_list("profile_id", "entity", "status")
        .annotate(count=Count("id"), oldest=Min("created_at"))
        .order_by()
    )


# --- message search --------------------------------------------------------------------------


def day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def in_date_range(messages: QuerySet, field_name: str, start: date | None,
                  end: date | None) -> QuerySet:
    """Both days included, in the connector's time zone."""
    if start:
        messages = messages.filter(**{f"{field_name}__gte": day_start(start)})
    if end:
        messages = messages.filter(**{f"{field_name}__lt": day_start(end + timedelta(days=1))})
    return messages


def message_search(*, profile: Profile | None = None, sku: str = "", entity: str = "",
                   status: str = "", received_from: date | None = None,
                   received_to: date | None = None) -> QuerySet[Message]:
    """Messages in any status, newest first."""
    messages = Message.objects.select_related("profile").order_by("-id")
    if profile:
        messages = messages.filter(profile=profile)
    if sku:
        messages = messages.filter(sku=sku.strip())
    if entity:
        messages = messages.filter(entity=entity)
    if status:
        messages = messages.filter(status=status)
    return in_date_range(messages, "created_at", received_from, received_to)


def attempts_of(message: Message) -> QuerySet:
    return message.attempt_set.order_by("created_at", "id")


IDS_IN_DETAIL = re.compile(r"\bids ((?:\d+, )*\d+)")


def ids_named_in(detail: str) -> set[int]:
    """The message ids a reprocess or dismiss entry lists ('… ids 4, 5, 6 and 3 more')."""
    return {int(number) for match in IDS_IN_DETAIL.findall(detail)
            for number in match.split(", ")}


def audit_trail(message: Message) -> list[AuditEntry]:
    """Reprocess and dismiss entries that name this message, oldest first."""
    candidates = AuditEntry.objects.filter(
        Q(profile_id=message.profile_id) | Q(profile__isnull=True),
        kind__in=[AuditEntry.Kind.REPROCESS, AuditEntry.Kind.DISMISS],
        created_at__gte=message.created_at,
        detail__contains=str(message.pk),
    ).order_by("created_at", "id")
    return [entry for entry in candidates if message.pk in ids_named_in(entry.detail)]


# --- Reprocess Failed Messages ---------------------------------------------------------------


def failed_messages(*, profile: Profile | None = None, entity: str = "", sku: str = "",
                    error: str = "", failed_from: date | None = None,
                    failed_to: date | None = None) -> QuerySet[Message]:
    """Failed and skipped messages, most recently failed first (`message_failed_idx`)."""
    messages = Message.objects.failed_or_skipped().select_related("profile").order_by(
        "-updated_at", "-id"
    )
    if profile:
        messages = messages.filter(profile=profile)
    if entity:
        messages = messages.filter(entity=entity)
    if sku:
        messages = messages.filter(sku=sku.strip())
    if error:
        messages = messages.filter(last_error__icontains=error.strip())
    return in_date_range(messages, "failed_at", failed_from, failed_to)


# --- audit log -------------------------------------------------------------------------------


def audit_entries(*, actor: str = "", profile: Profile | None = None,
                  kind: str = "") -> QuerySet[AuditEntry]:
    entries = AuditEntry.objects.select_related("profile").order_by("-created_at", "-id")
    if actor:
        entries = entries.filter(actor=actor)
    if profile:
        entries = entries.filter(profile=profile)
    if kind:
        entries = entries.filter(kind=kind)
    return entries


def audit_actors() -> list[str]:
    return list(AuditEntry.objects.order_by("actor").values_list("actor", flat=True).distinct())
