"""Message search, the message page (payload, attempts, audit trail) and the CSV export."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models.query import QuerySet
from django.http import StreamingHttpResponse
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from connector.models import AuditEntry
from message_queue import views_screens
from message_queue.models import Message, Status
from message_queue.reprocess import dismiss, reprocess
from setup_params.models import create_profile, get_profile
from tests.message_queue.queue_rows import make_attempt, make_message, make_messages

pytestmark = pytest.mark.django_db

HEADERS = [
    "ID",
    "Profile",
    "Entity",
    "SKU",
    "Key",
    "Status",
    "Attempts",
    "Last HTTP status",
    "Last error",
    "Received",
    "Sent at",
]


def found_ids(response) -> list[int]:
    return [message.pk for message in response.context["page"].rows]


def search(client, **filters):
    return client.get(reverse("message_search"), filters)


def test_search_by_sku_finds_the_sku_in_any_status_newest_first(viewer_client):
    profile = get_profile()
    sent = make_message(profile, sku="AALEGO500", status=Status.SENT)
    failed = make_message(profile, sku="AALEGO500", entity="inventory", status=Status.FAILED)
    pending = make_message(profile, sku="AALEGO500", key="AALEGO500|1")
    make_messages(profile, 3)

    response = search(viewer_client, sku=" AALEGO500 ")

    assert found_ids(response) == [pending.pk, failed.pk, sent.pk]
    html = response.content.decode()
    assert f'href="{reverse("message_detail", args=[sent.pk])}"' in html
    assert ">Sent</span>" in html and ">Failed</span>" in html


@pytest.mark.parametrize(
    "filters,expected",
    [
        ({"entity": "inventory"}, ["stock-new", "stock-old"]),
        ({"status": "sent"}, ["price-sent"]),
        ({"status": "failed", "entity": "inventory"}, ["stock-old"]),
        ({"profile": "east"}, ["east"]),
    ],
)
def test_entity_status_and_profile_narrow_the_search(viewer_client, filters, expected):
    profile = get_profile()
    make_message(profile, sku="price-sent", status=Status.SENT)
    make_message(profile, sku="stock-old", entity="inventory", status=Status.FAILED)
    make_message(profile, sku="stock-new", entity="inventory")
    make_message(create_profile("east"), sku="east")

    response = search(viewer_client, **filters)

    assert [message.sku for message in response.context["page"].rows] == expected


def test_the_date_range_includes_both_days(viewer_client):
    profile = get_profile()
    now = timezone.now()
    make_message(profile, sku="three-days-ago", created_at=now - timedelta(days=3))
    make_message(profile, sku="yesterday", created_at=now - timedelta(days=1))
    make_message(profile, sku="today", created_at=now)
    yesterday = timezone.localdate() - timedelta(days=1)

    response = search(
        viewer_client, received_from=yesterday.isoformat(), received_to=yesterday.isoformat()
    )
    assert [message.sku for message in response.context["page"].rows] == ["yesterday"]

    response = search(viewer_client, received_from=yesterday.isoformat())
    assert [message.sku for message in response.context["page"].rows] == ["today", "yesterday"]


def test_an_end_before_the_start_is_an_error_and_finds_nothing(viewer_client):
    make_message(get_profile())

    response = search(viewer_client, received_from="2025-03-20", received_to="2025-03-01")

    assert "The end date is before the start date." in response.content.decode()
    assert found_ids(response) == []
    assert "data-no-results" in response.content.decode()


def test_pages_go_on_without_counting_the_table(viewer_client, monkeypatch):
    monkeypatch.setattr(views_screens, "MESSAGES_PER_PAGE", 2)
    messages = make_messages(get_profile(), 5, status=Status.SENT)

    with CaptureQueriesContext(connection) as queries:
        first = search(viewer_client, status="sent")
    last = search(viewer_client, status="sent", page=3)

    assert found_ids(first) == [messages[4].pk, messages[3].pk]
    assert not any("COUNT(" in query["sql"] for query in queries)
    assert "?status=sent&amp;page=2" in first.content.decode()
    assert found_ids(last) == [messages[0].pk]
    assert last.context["page"].has_next is False


def test_the_message_page_shows_payload_timestamp_attempts_and_answers(viewer_client):
    profile = get_profile()
    message = make_message(
        profile, sku="AALEGO500", status=Status.SENT, source_ts=638465233453014192
    )
    make_attempt(
        profile,
        [message],
        status_code=503,
        ok=False,
        duration_ms=1234.4,
        error="Magento answered 503: Service Unavailable",
        created_at=timezone.now() - timedelta(minutes=1),
    )
    make_attempt(profile, [message], status_code=200, duration_ms=87.0)

    response = viewer_client.get(reverse("message_detail", args=[message.pk]))

    html = response.content.decode()
    assert "638465233453014192" in html
    assert "&quot;sku&quot;: &quot;AALEGO500&quot;" in html
    attempts = list(response.context["attempts"])
    assert [attempt.status_code for attempt in attempts] == [503, 200]
    assert "http://magento.test/rest/default/V1/products/base-prices" in html
    assert "1234 ms" in html and "87 ms" in html
    assert "Magento answered 503: Service Unavailable" in html


def test_the_audit_trail_lists_the_entries_that_name_the_message(viewer_client, manager):
    profile = get_profile()
    messages = make_messages(profile, 11, status=Status.FAILED)
    first, eleventh = messages[0], messages[10]
    reprocess(Message.objects.filter(pk=first.pk), user=manager, profile=profile)
    Message.objects.filter(pk=first.pk).update(status=Status.FAILED)
    dismiss(
        Message.objects.filter(pk=first.pk),
        "discontinued in Acumatica",
        user=manager,
        profile=profile,
    )
    # Names message 11 (and so contains the digits of message 1's id): not on message 1's page.
    reprocess(Message.objects.filter(pk=eleventh.pk), user=manager, profile=profile)

    response = viewer_client.get(reverse("message_detail", args=[first.pk]))

    trail = response.context["audit_trail"]
    assert [entry.kind for entry in trail] == [AuditEntry.Kind.REPROCESS, AuditEntry.Kind.DISMISS]
    html = response.content.decode()
    assert "discontinued in Acumatica" in html
    assert "data-reprocessed" in html and "by manager" in html


def test_an_unknown_message_is_404(viewer_client):
    assert viewer_client.get(reverse("message_detail", args=[999999])).status_code == 404


def read_csv(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_the_export_has_the_page_columns_and_the_search_rows(viewer_client):
    profile = get_profile()
    make_message(profile, sku="AALEGO500", status=Status.SENT)
    make_message(profile, sku="=HYPERLINK(1)", status=Status.FAILED, last_error="-1 is not a price")
    make_message(profile, sku="other", status=Status.SENT)

    page = search(viewer_client, status="failed").content.decode()
    response = viewer_client.get(reverse("message_export"), {"status": "failed"})

    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="messages-')
    rows = read_csv(response)
    assert rows[0] == HEADERS
    assert all(f'<th scope="col">{header}</th>' in page for header in HEADERS)
    assert len(rows) == 2
    # A spreadsheet must not run what Magento or Acumatica wrote.
    assert rows[1][3] == "'=HYPERLINK(1)" and rows[1][8] == "'-1 is not a price"
    assert rows[1][2] == "Pricing" and rows[1][5] == "Failed"


def test_the_export_link_carries_the_search(viewer_client):
    make_message(get_profile())
    html = search(viewer_client, sku="AALEGO500", page="2").content.decode()
    assert f'href="{reverse("message_export")}?sku=AALEGO500"' in html


def test_exporting_ten_thousand_rows_streams_them_in_chunks(viewer_client, monkeypatch):
    profile = get_profile()
    Message.objects.bulk_create(
        Message(
            profile=profile,
            entity="price",
            key=f"SKU{number:05d}|0",
            sku=f"SKU{number:05d}",
            payload={"sku": f"SKU{number:05d}", "price": 1},
            status=Status.SENT,
        )
        for number in range(10_000)
    )
    chunk_sizes = []
    real_iterator = QuerySet.iterator

    def iterator(queryset, chunk_size=None):
        chunk_sizes.append(chunk_size)
        return real_iterator(queryset, chunk_size=chunk_size)

    monkeypatch.setattr(QuerySet, "iterator", iterator)

    with CaptureQueriesContext(connection) as queries:
        response = viewer_client.get(reverse("message_export"), {"status": "sent"})
        assert response.streaming
        lines = iter(response.streaming_content)
        header = next(lines).decode()
        # Nothing was read from the message table before the first line went out.
        assert not any('"message_queue_message"' in query["sql"] for query in queries)
        body = [line.decode() for line in lines]

    assert header == ",".join(HEADERS) + "\r\n"
    assert len(body) == 10_000
    assert chunk_sizes == [views_screens.EXPORT_CHUNK_SIZE]
    assert body[0].split(",")[3] == "SKU09999"


def test_a_viewer_can_search_and_export(viewer_client):
    assert search(viewer_client).status_code == 200
    assert viewer_client.get(reverse("message_export")).status_code == 200


@pytest.mark.parametrize("url_name", ["message_search", "message_export"])
def test_a_user_without_a_role_gets_403(nobody_client, url_name):
    assert nobody_client.get(reverse(url_name)).status_code == 403
