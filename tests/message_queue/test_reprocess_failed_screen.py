"""Reprocess Failed Messages: filter failed and skipped messages, reprocess or dismiss them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from connector.models import AuditEntry
from message_queue import views_screens
from message_queue.models import Message, Status
from setup_params.models import create_profile, get_profile
from tests.message_queue.queue_rows import make_message, make_messages

pytestmark = pytest.mark.django_db

URL = reverse("reprocess_failed")


def listed(response) -> list[str]:
    return [message.sku for message in response.context["page"].object_list]


def status_of(message: Message) -> str:
    message.refresh_from_db()
    return message.status


@pytest.fixture
def failures():
    """Two failed prices, one skipped price (unknown SKU), one failed stock level, and
    messages in other statuses that the screen never lists."""
    profile = get_profile()
    now = timezone.now()
    return {
        "price-400": make_message(
            profile,
            sku="PRICE-400",
            status=Status.FAILED,
            last_error="Invalid attribute price = -1.",
            updated_at=now - timedelta(minutes=4),
        ),
        "price-500": make_message(
            profile,
            sku="PRICE-500",
            status=Status.FAILED,
            last_error="Internal Error. Report ID: webapi-1",
            last_http_status=500,
            updated_at=now - timedelta(minutes=3),
            failed_at=now - timedelta(days=2),
        ),
        "unknown": make_message(
            profile,
            sku="NO-SUCH-SKU",
            status=Status.SKIPPED,
            last_error="Requested product doesn't exist",
            updated_at=now - timedelta(minutes=2),
        ),
        "stock": make_message(
            profile,
            sku="STOCK-1",
            entity="inventory",
            status=Status.FAILED,
            last_error="Validation Failed: quantity",
            updated_at=now - timedelta(minutes=1),
        ),
        "sent": make_message(profile, sku="SENT-1", status=Status.SENT),
        "pending": make_message(profile, sku="PENDING-1"),
        "dismissed": make_message(profile, sku="DISMISSED-1", status=Status.DISMISSED),
    }


def test_failed_and_skipped_messages_are_listed_most_recent_first(viewer_client, failures):
    response = viewer_client.get(URL)

    assert listed(response) == ["STOCK-1", "NO-SUCH-SKU", "PRICE-500", "PRICE-400"]
    html = response.content.decode()
    for header in [
        "Entity",
        "SKU",
        "Attempts",
        "Last error",
        "Last HTTP status",
        "Failed at",
        "Reprocessed",
    ]:
        assert f'<th scope="col">{header}</th>' in html
    assert "Internal Error. Report ID: webapi-1" in html
    assert 'data-matching-count="4"' in html


@pytest.mark.parametrize(
    "filters,expected",
    [
        ({"entity": "inventory"}, ["STOCK-1"]),
        ({"sku": "PRICE-400"}, ["PRICE-400"]),
        ({"error": "internal error"}, ["PRICE-500"]),
        ({"entity": "price", "error": "invalid"}, ["PRICE-400"]),
        ({"failed_to": (timezone.localdate() - timedelta(days=1)).isoformat()}, ["PRICE-500"]),
        (
            {"failed_from": timezone.localdate().isoformat()},
            ["STOCK-1", "NO-SUCH-SKU", "PRICE-400"],
        ),
        ({"profile": "east"}, []),
    ],
)
def test_filters_narrow_the_list(viewer_client, failures, filters, expected):
    create_profile("east")
    response = viewer_client.get(URL, filters)
    assert listed(response) == expected
    assert response.context["matching_count"] == len(expected)


def test_reprocessing_selected_rows_sends_them_again_and_audits_it(manager_client, failures):
    chosen = [failures["price-400"], failures["unknown"]]

    response = manager_client.post(
        f"{URL}?entity=price",
        {"action": "reprocess", "scope": "selected", "ids": [m.pk for m in chosen]},
        follow=True,
    )

    assert response.redirect_chain == [(f"{URL}?entity=price", 302)]
    assert "2 messages reprocessed: back to pending." in response.content.decode()
    assert listed(response) == ["PRICE-500"]
    for message in chosen:
        message.refresh_from_db()
        assert (message.status, message.attempts, message.reprocessed_by) == (
            Status.PENDING,
            0,
            "manager",
        )
    entry = AuditEntry.objects.get(kind=AuditEntry.Kind.REPROCESS)
    assert (entry.actor, entry.profile.name) == ("manager", "default")
    assert f"ids {chosen[0].pk}, {chosen[1].pk}" in entry.detail


def test_all_that_match_reprocesses_exactly_the_filtered_rows(manager_client, failures):
    response = manager_client.post(
        f"{URL}?entity=price", {"action": "reprocess", "scope": "matching"}, follow=True
    )

    assert "3 messages reprocessed" in response.content.decode()
    assert status_of(failures["price-400"]) == Status.PENDING
    assert status_of(failures["price-500"]) == Status.PENDING
    assert status_of(failures["unknown"]) == Status.PENDING
    assert status_of(failures["stock"]) == Status.FAILED
    assert status_of(failures["sent"]) == Status.SENT
    assert status_of(failures["dismissed"]) == Status.DISMISSED


def test_ids_outside_the_filter_or_no_longer_failed_are_left_alone(manager_client, failures):
    ids = [failures["stock"].pk, failures["sent"].pk, failures["price-400"].pk]

    manager_client.post(
        f"{URL}?entity=price", {"action": "reprocess", "scope": "selected", "ids": ids}
    )

    assert status_of(failures["price-400"]) == Status.PENDING
    assert status_of(failures["stock"]) == Status.FAILED
    assert status_of(failures["sent"]) == Status.SENT


def test_a_reprocessed_message_merges_into_a_newer_pending_change(manager_client):
    profile = get_profile()
    old = make_message(profile, sku="AALEGO500", status=Status.FAILED)
    newer = make_message(profile, sku="AALEGO500")

    manager_client.post(URL, {"action": "reprocess", "scope": "selected", "ids": [old.pk]})

    assert status_of(old) == Status.SUPERSEDED
    assert status_of(newer) == Status.PENDING


def test_dismissing_needs_a_reason(manager_client, failures):
    response = manager_client.post(
        URL,
        {"action": "dismiss", "scope": "selected", "ids": [failures["stock"].pk]},
        follow=True,
    )

    assert "Give a reason for dismissing the messages." in response.content.decode()
    assert status_of(failures["stock"]) == Status.FAILED
    assert not AuditEntry.objects.exists()


def test_a_dismissed_message_leaves_the_list_with_its_reason_audited(manager_client, failures):
    response = manager_client.post(
        URL,
        {
            "action": "dismiss",
            "scope": "selected",
            "ids": [failures["unknown"].pk],
            "reason": "SKU retired in Magento",
        },
        follow=True,
    )

    assert "1 message dismissed." in response.content.decode()
    assert "NO-SUCH-SKU" not in listed(response)
    failures["unknown"].refresh_from_db()
    assert failures["unknown"].dismissed_reason == "SKU retired in Magento"
    entry = AuditEntry.objects.get(kind=AuditEntry.Kind.DISMISS)
    assert "SKU retired in Magento" in entry.detail and entry.actor == "manager"


def test_selecting_nothing_changes_nothing(manager_client, failures):
    response = manager_client.post(URL, {"action": "reprocess", "scope": "selected"}, follow=True)
    assert "Select at least one message." in response.content.decode()
    assert listed(response) == ["STOCK-1", "NO-SUCH-SKU", "PRICE-500", "PRICE-400"]


def test_each_profile_gets_its_own_audit_entry(manager_client, failures):
    make_message(create_profile("east"), sku="EAST-1", status=Status.FAILED)

    manager_client.post(URL, {"action": "reprocess", "scope": "matching"})

    entries = AuditEntry.objects.filter(kind=AuditEntry.Kind.REPROCESS).order_by("profile__name")
    assert [(entry.profile.name, entry.detail.split(" ")[0]) for entry in entries] == [
        ("default", "4"),
        ("east", "1"),
    ]


def test_the_manager_sees_checkboxes_and_the_count_of_all_that_match(manager_client, failures):
    html = manager_client.get(URL, {"entity": "price"}).content.decode()

    assert html.count('name="ids"') == 3
    assert "Reprocess all 3 that match" in html and "Dismiss all 3 that match" in html
    assert 'data-matching-count="3"' in html
    assert "/static/message_queue/reprocess_failed.js" in html


def test_the_list_is_paged(manager_client, monkeypatch):
    monkeypatch.setattr(views_screens, "FAILED_PER_PAGE", 2)
    make_messages(get_profile(), 5, status=Status.FAILED)

    response = manager_client.get(URL, {"entity": "price", "page": 3})

    assert len(response.context["page"].object_list) == 1
    assert "Page 3 of 3" in response.content.decode()
    assert "Reprocess all 5 that match" in response.content.decode()


def test_a_viewer_sees_the_list_without_action_buttons(viewer_client, failures):
    html = viewer_client.get(URL).content.decode()

    assert "NO-SUCH-SKU" in html
    assert "data-read-only" in html
    assert 'name="ids"' not in html
    assert "Reprocess selected" not in html and "Dismiss selected" not in html
    assert "reprocess_failed.js" not in html


@pytest.mark.parametrize("action", ["reprocess", "dismiss"])
def test_a_viewer_posting_an_action_gets_403_and_nothing_changes(viewer_client, failures, action):
    response = viewer_client.post(URL, {"action": action, "scope": "matching", "reason": "x"})

    assert response.status_code == 403
    assert status_of(failures["stock"]) == Status.FAILED
    assert not AuditEntry.objects.exists()
