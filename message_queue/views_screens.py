"""The operator screens: queue dashboard, message search, Reprocess Failed Messages, audit log.

Everyone with a role reads them; reprocess and dismiss need the manage permission.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.forms import Form
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from connector.roles import manage_required
from message_queue import dashboard, queries, reprocess
from message_queue.forms import (
    AuditLogFilterForm,
    FailedMessagesFilterForm,
    MessageSearchForm,
    ReprocessFailedActionForm,
)
from message_queue.models import Entity, Message, Status
from setup_params.models import Profile

DASHBOARD_REFRESH_SECONDS = 10
MESSAGES_PER_PAGE = 50
FAILED_PER_PAGE = 50
AUDIT_ENTRIES_PER_PAGE = 50
EXPORT_CHUNK_SIZE = 2000

# The search page's columns, which the CSV export repeats: (field, header).
SEARCH_COLUMNS = [
    ("id", "ID"),
    ("profile__name", "Profile"),
    ("entity", "Entity"),
    ("sku", "SKU"),
    ("key", "Key"),
    ("status", "Status"),
    ("attempts", "Attempts"),
    ("last_http_status", "Last HTTP status"),
    ("last_error", "Last error"),
    ("created_at", "Received"),
    ("sent_at", "Sent at"),
]


def filtered(form: Form, query: Callable[..., QuerySet]) -> QuerySet:
    """The query with the form's filters; nothing when the filters are invalid."""
    if not form.is_bound:
        return query()
    if form.is_valid():
        return query(**form.cleaned_data)
    return query().none()


# --- queue dashboard -------------------------------------------------------------------------


@require_GET
def queue_dashboard(request: HttpRequest) -> HttpResponse:
    summary = queries.queue_summary()
    return render(request, "message_queue/queue_dashboard.html", {
        "summary": summary,
        "columns": dashboard.COLUMNS,
        "column_groups": dashboard.column_groups(),
        "profiles": dashboard.table_rows(summary),
        "chart": dashboard.chart_data(summary.chart),
        "refresh_seconds": DASHBOARD_REFRESH_SECONDS,
    })


@never_cache
@require_GET
def queue_dashboard_data(request: HttpRequest) -> JsonResponse:
    return JsonResponse(dashboard.summary_json(queries.queue_summary()))


# --- message search --------------------------------------------------------------------------


@dataclass
class PageWithoutCount:
    """A page of a search that may match a million rows: no COUNT(*), just "is there more"."""

    rows: list
    number: int
    has_next: bool

    @property
    def has_previous(self) -> bool:
        return self.number > 1


def page_without_count(rows: QuerySet, number: str | None, size: int) -> PageWithoutCount:
    number = int(number) if number and number.isdigit() and int(number) > 0 else 1
    start = (number - 1) * size
    found = list(rows[start:start + size + 1])
    return PageWithoutCount(found[:size], number, len(found) > size)


@require_GET
def message_search(request: HttpRequest) -> HttpResponse:
    form = MessageSearchForm(request.GET or None)
    page = page_without_count(filtered(form, queries.message_search), request.GET.get("page"),
                              MESSAGES_PER_PAGE)
    return render(request, "message_queue/message_search.html", {
        "form": form,
        "page": page,
        "headers": [header for _, header in SEARCH_COLUMNS],
    })


@require_GET
def message_detail(request: HttpRequest, pk: int) -> HttpResponse:
    message = get_object_or_404(Message.objects.select_related("profile"), pk=pk)
    return render(request, "message_queue/message_detail.html", {
        "message": message,
        "payload": json.dumps(message.payload, indent=2, sort_keys=True),
        "attempts": queries.attempts_of(message),
        "audit_trail": queries.audit_trail(message),
    })


class Echo:
    """csv.writer writes into it and gets the line back, to stream it."""

    def write(self, value: str) -> str:
        return value


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
ENTITY_LABELS = dict(Entity.choices)
STATUS_LABELS = dict(Status.choices)


def export_value(field_name: str, value) -> object:
    if value is None:
        return ""
    if field_name == "entity":
        return ENTITY_LABELS.get(value, value)
    if field_name == "status":
        return STATUS_LABELS.get(value, value)
    if hasattr(value, "isoformat"):
        return timezone.localtime(value).isoformat(timespec="seconds")
    # A spreadsheet would run a text cell that starts like a formula.
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_lines(rows: QuerySet[Message]) -> Iterator[str]:
    """The header, then each message; rows come from the database in chunks."""
    writer = csv.writer(Echo())
    fields = [field_name for field_name, _ in SEARCH_COLUMNS]
    yield writer.writerow([header for _, header in SEARCH_COLUMNS])
    for row in rows.values_list(*fields).iterator(chunk_size=EXPORT_CHUNK_SIZE):
        yield writer.writerow([export_value(name, value) for name, value in zip(fields, row,
                                                                                  strict=True)])


@require_GET
def message_export(request: HttpRequest) -> StreamingHttpResponse:
    form = MessageSearchForm(request.GET or None)
    response = StreamingHttpResponse(
        csv_lines(filtered(form, queries.message_search)), content_type="text/csv; charset=utf-8"
    )
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="messages-{stamp}.csv"'
    return response


# --- Reprocess Failed Messages ---------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def reprocess_failed(request: HttpRequest) -> HttpResponse:
    filters = FailedMessagesFilterForm(request.GET or None)
    matching = filtered(filters, queries.failed_messages)
    if request.method == "POST":
        return act_on_failed(request, matching)
    page = Paginator(matching, FAILED_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "message_queue/reprocess_failed.html", {
        "form": filters,
        "page": page,
        "matching_count": page.paginator.count,
    })


@manage_required
def act_on_failed(request: HttpRequest, matching: QuerySet[Message]) -> HttpResponse:
    """Reprocess or dismiss the ticked rows or all that match; back to the same list."""
    form = ReprocessFailedActionForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect(request.get_full_path())
    action, scope = form.cleaned_data["action"], form.cleaned_data["scope"]
    chosen = matching if scope == "matching" else matching.filter(id__in=form.cleaned_data["ids"])
    count = 0
    for profile, of_profile in by_profile(chosen):
        if action == "reprocess":
            count += reprocess.reprocess(of_profile, user=request.user, profile=profile)
        else:
            count += reprocess.dismiss(of_profile, form.cleaned_data["reason"],
                                       user=request.user, profile=profile)
    done = "reprocessed: back to pending" if action == "reprocess" else "dismissed"
    messages.success(request, f"{count} message{'s' if count != 1 else ''} {done}.")
    return redirect(request.get_full_path())


def by_profile(chosen: QuerySet[Message]) -> Iterator[tuple[Profile, QuerySet[Message]]]:
    """Each profile's share, so that every audit entry names its profile. Without the joins
    and ordering of the list: reprocess locks the rows it changes, and only those."""
    plain = chosen.select_related(None).order_by()
    profile_ids = plain.values_list("profile_id", flat=True).distinct()
    for profile in Profile.objects.filter(id__in=profile_ids).order_by("name"):
        yield profile, plain.filter(profile=profile)


# --- audit log -------------------------------------------------------------------------------


@require_GET
def audit_log(request: HttpRequest) -> HttpResponse:
    form = AuditLogFilterForm(request.GET or None, actors=queries.audit_actors())
    entries = filtered(form, queries.audit_entries)
    page = Paginator(entries, AUDIT_ENTRIES_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "message_queue/audit_log.html", {"form": form, "page": page})
