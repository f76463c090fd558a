"""The audit log: every entry, newest first, filterable by user, profile and kind, paged."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from connector.models import AuditEntry
from message_queue import views_screens
from setup_params.models import create_profile, get_profile
from tests.message_queue.queue_rows import audit

pytestmark = pytest.mark.django_db

Kind = AuditEntry.Kind


@pytest.fixture
def entries():
    default, east = get_profile(), create_profile("east")
    now = timezone.now()
    return [
        audit(
            Kind.SETTINGS_CHANGED,
            actor="alice",
            profile=default,
            fields=["batch_count"],
            created_at=now - timedelta(hours=3),
        ),
        audit(Kind.INITIALIZE, actor="cli", profile=east, created_at=now - timedelta(hours=2)),
        audit(
            Kind.DISMISS,
            actor="bob",
            profile=default,
            detail="1 messages dismissed: retired",
            created_at=now - timedelta(hours=1),
        ),
        audit(
            Kind.REPROCESS,
            actor="alice",
            profile=east,
            detail="3 messages reprocessed",
            created_at=now,
        ),
    ]


def shown(response) -> list[str]:
    return [entry.get_kind_display() for entry in response.context["page"].object_list]


def test_every_entry_is_listed_newest_first(viewer_client, entries):
    response = viewer_client.get(reverse("audit_log"))

    assert shown(response) == [
        "Reprocessed messages",
        "Dismissed messages",
        "Initialized",
        "Settings changed",
    ]
    html = response.content.decode()
    assert "1 messages dismissed: retired" in html
    assert "batch_count" in html


@pytest.mark.parametrize(
    "filters,expected",
    [
        ({"actor": "alice"}, ["Reprocessed messages", "Settings changed"]),
        ({"profile": "east"}, ["Reprocessed messages", "Initialized"]),
        ({"kind": "dismiss"}, ["Dismissed messages"]),
        ({"actor": "alice", "profile": "default"}, ["Settings changed"]),
    ],
)
def test_filters_by_user_profile_and_kind(viewer_client, entries, filters, expected):
    assert shown(viewer_client.get(reverse("audit_log"), filters)) == expected


def test_the_user_filter_offers_everyone_who_acted(viewer_client, entries):
    form = viewer_client.get(reverse("audit_log")).context["form"]
    assert [value for value, _ in form.fields["actor"].choices] == ["", "alice", "bob", "cli"]


def test_an_unknown_filter_value_is_an_error_and_shows_nothing(viewer_client, entries):
    response = viewer_client.get(reverse("audit_log"), {"kind": "made-up"})
    assert shown(response) == []
    assert "data-no-entries" in response.content.decode()


def test_the_log_is_paged_and_keeps_its_filter(viewer_client, monkeypatch):
    monkeypatch.setattr(views_screens, "AUDIT_ENTRIES_PER_PAGE", 2)
    for number in range(5):
        audit(Kind.PAUSE, actor="alice", detail=f"pause {number}")

    first = viewer_client.get(reverse("audit_log"), {"actor": "alice"})
    third = viewer_client.get(reverse("audit_log"), {"actor": "alice", "page": 3})

    assert "Page 1 of 3" in first.content.decode()
    assert "?actor=alice&amp;page=2" in first.content.decode()
    assert len(third.context["page"].object_list) == 1


def test_a_user_without_a_role_gets_403(nobody_client):
    assert nobody_client.get(reverse("audit_log")).status_code == 403
