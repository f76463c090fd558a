"""How the queue dashboard shows a `QueueSummary`: its columns, each cell's text, and the
JSON the page fetches to refresh itself. The page and the JSON use the same cell texts, so
a refresh shows exactly what a reload would."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby
from urllib.parse import urlencode

from django.urls import reverse
from django.utils import timezone
from django.utils.timesince import timesince

from message_queue.models import Status
from message_queue.queries import (
    COUNTED_STATUSES,
    EntitySummary,
    HourlyChart,
    ProfileSummary,
    QueueSummary,
)
from setup_params.models import Profile

NEVER = "—"


def local_time(moment: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return timezone.localtime(moment).strftime(fmt) if moment else NEVER


def number(value: int) -> str:
    return f"{value:,}"


def sending_state(profile: ProfileSummary, row: EntitySummary) -> str:
    if profile.state != Profile.State.ACTIVE:
        return f"Not sending: profile {profile.state_label.lower()}"
    if row.outage_error is not None:
        return f"Paused by the outage guard: {row.outage_error}"
    return "Sending"


def search_link(**filters: str) -> Callable[[EntitySummary], str]:
    def link(row: EntitySummary) -> str:
        query = {"profile": row.profile, "entity": row.entity, **filters}
        return f"{reverse('message_search')}?{urlencode(query)}"

    return link


def failed_link(row: EntitySummary) -> str:
    query = {"profile": row.profile, "entity": row.entity}
    return f"{reverse('reprocess_failed')}?{urlencode(query)}"


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    text: Callable[[ProfileSummary, EntitySummary, datetime], str]
    group: str = ""
    link: Callable[[EntitySummary], str] | None = None
    title: str = ""


NOW, LAST_HOUR, LAST_DAY = "In the queue now", "Last hour", "Last 24 hours"


def status_column(status: str, label: str, link=None, title: str = "") -> Column:
    return Column(status, label, lambda p, row, now: number(row.counts.get(status, 0)), NOW,
                  link or search_link(status=status), title)


def figure_column(key: str, label: str, group: str, title: str = "") -> Column:
    return Column(key, label, lambda p, row, now: number(getattr(row, key)), group, title=title)


COLUMNS = [
    status_column(Status.PENDING, "Pending"),
    Column("oldest_pending", "Oldest pending",
           lambda p, row, now: timesince(row.oldest_pending_at, now, depth=1)
           if row.oldest_pending_at else NEVER, NOW),
    status_column(Status.PROCESSING, "Processing"),
    status_column(Status.FAILED, "Failed", failed_link),
    status_column(Status.SKIPPED, "Skipped (unknown SKU)", failed_link,
                  "Magento does not know the SKU: counted, not an error to chase."),
    status_column(Status.DISMISSED, "Dismissed"),
    figure_column("sent_last_hour", "Sent", LAST_HOUR,
                  "Records sent since the start of the previous hour."),
    figure_column("failed_last_hour", "Failed", LAST_HOUR,
                  "Records failed since the start of the previous hour."),
    figure_column("sent_24h", "Sent", LAST_DAY),
    figure_column("failed_24h", "Failed", LAST_DAY),
    figure_column("failed_calls_24h", "Failed calls", LAST_DAY,
                  "HTTP calls to Magento that will be retried: timeouts, 5xx, refusals."),
    figure_column("unmapped_warehouse_rows_24h", "Unmapped warehouse rows", LAST_DAY,
                  "Stock rows skipped because no Magento source is mapped to their warehouse."),
    Column("last_sent", "Last successful send",
           lambda p, row, now: local_time(row.last_sent_at)),
    Column("sending", "Sending", lambda p, row, now: sending_state(p, row)),
]


def column_groups() -> list[tuple[str, list[Column]]]:
    """The header's first row: each group of neighbouring columns (a column of no group is
    its own, two rows high)."""
    return [(group, list(columns))
            for group, columns in groupby(COLUMNS, key=lambda column: column.group)]


def cell_id(row: EntitySummary, key: str) -> str:
    return f"{row.profile}:{row.entity}:{key}"


def profile_state_text(profile: ProfileSummary) -> str:
    by = f" by {profile.state_changed_by}" if profile.state_changed_by else ""
    return f"{profile.state_label} since {local_time(profile.state_changed_at)}{by}"


@dataclass
class Cell:
    id: str
    text: str
    link: str = ""


def table_rows(summary: QueueSummary) -> list[dict]:
    """Per profile: its state text and, per entity, the cells in column order."""
    return [
        {
            "profile": profile,
            "state_id": f"{profile.name}:state",
            "state_text": profile_state_text(profile),
            "rows": [
                {
                    "summary": row,
                    "paused": row.outage_error is not None,
                    "cells": [
                        Cell(cell_id(row, column.key), column.text(profile, row,
                                                                   summary.generated_at),
                             column.link(row) if column.link else "")
                        for column in COLUMNS
                    ],
                }
                for row in profile.entities
            ],
        }
        for profile in summary.profiles
    ]


def cells(summary: QueueSummary) -> dict[str, str]:
    texts = {}
    for profile in table_rows(summary):
        texts[profile["state_id"]] = profile["state_text"]
        for row in profile["rows"]:
            texts.update({cell.id: cell.text for cell in row["cells"]})
    return texts


def chart_data(chart: HourlyChart) -> dict:
    return {
        "labels": [local_time(hour, "%H:%M") for hour in chart.hours],
        "sent": chart.sent,
        "failed": chart.failed,
        "backlog": chart.backlog,
    }


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def summary_json(summary: QueueSummary) -> dict:
    """What `queue_dashboard_data` answers: raw figures, the page's cell texts, the chart."""
    return {
        "generated_at": iso(summary.generated_at),
        "refreshed": local_time(summary.generated_at, "%H:%M:%S"),
        "empty": summary.is_empty,
        "profiles": [
            {
                "name": profile.name,
                "state": profile.state,
                "entities": [
                    {
                        "entity": row.entity,
                        "counts": {status: row.counts.get(status, 0)
                                   for status in COUNTED_STATUSES},
                        "oldest_pending_at": iso(row.oldest_pending_at),
                        "last_sent_at": iso(row.last_sent_at),
                        "sent_last_hour": row.sent_last_hour,
                        "failed_last_hour": row.failed_last_hour,
                        "sent_24h": row.sent_24h,
                        "failed_24h": row.failed_24h,
                        "failed_calls_24h": row.failed_calls_24h,
                        "unmapped_warehouse_rows_24h": row.unmapped_warehouse_rows_24h,
                        "outage_error": row.outage_error,
                    }
                    for row in profile.entities
                ],
            }
            for profile in summary.profiles
        ],
        "cells": cells(summary),
        "chart": chart_data(summary.chart),
    }
