"""The queue dashboard: counts per profile and entity, hourly totals, the chart, its JSON."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from message_queue.models import OutageGuard, Status
from message_queue.queries import queue_summary
from setup_params.models import Profile, create_profile, get_profile
from tests.message_queue.queue_rows import add_hourly_stats, make_message, make_messages

pytestmark = pytest.mark.django_db


@pytest.fixture
def seeded_queue():
    """3 pending, 1 processing, 2 failed, 1 skipped, 1 dismissed Pricing; 5 sent; 2 pending
    Inventory; the processors' totals for this hour and two hours ago."""
    profile = get_profile()
    make_messages(profile, 3)
    make_message(profile, status=Status.PROCESSING)
    make_messages(profile, 2, status=Status.FAILED)
    make_message(profile, status=Status.SKIPPED)
    make_message(profile, status=Status.DISMISSED, dismissed_reason="discontinued")
    make_messages(profile, 5, status=Status.SENT)
    make_messages(profile, 2, entity="inventory")
    add_hourly_stats(
        profile, calls=4, sent=40, failed=2, skipped=1, failed_calls=1, last_sent_at=timezone.now()
    )
    add_hourly_stats(profile, hours_ago=2, calls=3, sent=300, failed=5)
    add_hourly_stats(
        profile,
        "inventory",
        hours_ago=30,
        calls=1,
        sent=9999,
        last_sent_at=timezone.now() - timedelta(hours=30),
    )
    return profile


def cell(response, profile: str, entity: str, key: str) -> str:
    return response.json()["cells"][f"{profile}:{entity}:{key}"]


def test_the_home_page_is_the_dashboard_with_counts_by_status(viewer_client, seeded_queue):
    html = viewer_client.get("/").content.decode()

    assert '<h1 class="h3 mb-0">Queue</h1>' in html
    for key, text in [
        ("pending", "3"),
        ("processing", "1"),
        ("failed", "2"),
        ("skipped", "1"),
        ("dismissed", "1"),
    ]:
        assert f'data-cell="default:price:{key}">{text}<' in html
    assert 'data-cell="default:inventory:pending">2<' in html
    assert "data-getting-started" not in html


def test_the_counts_and_totals_in_the_json_match_the_queue(viewer_client, seeded_queue):
    response = viewer_client.get(reverse("queue_dashboard_data"))

    assert response.status_code == 200
    price = response.json()["profiles"][0]["entities"][0]
    assert price["entity"] == "price"
    assert price["counts"] == {
        "pending": 3,
        "processing": 1,
        "failed": 2,
        "skipped": 1,
        "dismissed": 1,
    }
    assert (price["sent_last_hour"], price["sent_24h"]) == (40, 340)
    assert (price["failed_last_hour"], price["failed_24h"], price["failed_calls_24h"]) == (2, 7, 1)
    inventory = response.json()["profiles"][0]["entities"][1]
    # Sent 30 hours ago: outside the 24 h totals, still the last successful send.
    assert inventory["sent_24h"] == 0
    assert inventory["last_sent_at"] is not None
    assert cell(response, "default", "price", "sent_24h") == "340"
    assert response["Cache-Control"].startswith("max-age=0")


def test_sent_totals_come_from_the_hourly_totals_never_from_counting_sent_rows(
    viewer_client, seeded_queue
):
    with CaptureQueriesContext(connection) as queries:
        viewer_client.get(reverse("queue_dashboard_data"))

    message_queries = [q["sql"] for q in queries if '"message_queue_message"' in q["sql"]]
    assert len(message_queries) == 1
    assert "'sent'" not in message_queries[0] and "'superseded'" not in message_queries[0]


def test_the_dashboard_needs_a_fixed_number_of_queries_whatever_the_profiles(
    viewer_client, seeded_queue, django_assert_max_num_queries
):
    for name in ("east", "west", "north"):
        make_messages(create_profile(name), 2, status=Status.FAILED)
    with django_assert_max_num_queries(10):
        response = viewer_client.get(reverse("queue_dashboard"))
    assert response.status_code == 200
    assert 'data-cell="west:price:failed">2<' in response.content.decode()


def test_the_oldest_pending_message_gives_the_age(viewer_client):
    profile = get_profile()
    make_message(profile, created_at=timezone.now() - timedelta(minutes=42))
    make_message(profile)

    response = viewer_client.get(reverse("queue_dashboard_data"))

    assert cell(response, "default", "price", "oldest_pending") == "42\xa0minutes"
    assert cell(response, "default", "inventory", "oldest_pending") == "—"


def test_skipped_unknown_skus_and_unmapped_warehouse_rows_are_shown(viewer_client):
    profile = get_profile()
    make_messages(profile, 4, entity="inventory", status=Status.SKIPPED)
    add_hourly_stats(profile, "inventory", hours_ago=3, unmapped_warehouse_rows=17)

    response = viewer_client.get(reverse("queue_dashboard_data"))

    assert cell(response, "default", "inventory", "skipped") == "4"
    assert cell(response, "default", "inventory", "unmapped_warehouse_rows_24h") == "17"


def test_the_lifecycle_state_and_who_changed_it_are_shown(viewer_client):
    Profile.objects.filter(name="default").update(
        state=Profile.State.PAUSED, state_changed_by="alice"
    )

    response = viewer_client.get(reverse("queue_dashboard_data"))

    assert response.json()["cells"]["default:state"].startswith("Paused since ")
    assert response.json()["cells"]["default:state"].endswith(" by alice")
    assert cell(response, "default", "price", "sending") == "Not sending: profile paused"


def test_a_tripped_outage_guard_marks_its_row_and_says_why(viewer_client):
    profile = get_profile()
    Profile.objects.filter(pk=profile.pk).update(state=Profile.State.ACTIVE)
    OutageGuard.objects.create(
        profile=profile,
        entity="inventory",
        tripped=True,
        tripped_at=timezone.now(),
        last_error="Magento answered 401",
    )

    html = viewer_client.get(reverse("queue_dashboard")).content.decode()
    response = viewer_client.get(reverse("queue_dashboard_data"))

    assert '<tr data-row="default:inventory" class="table-danger">' in html
    assert "data-outage-banner" in html
    assert cell(response, "default", "inventory", "sending") == (
        "Paused by the outage guard: Magento answered 401"
    )
    assert cell(response, "default", "price", "sending") == "Sending"


def test_the_chart_has_24_hours_of_sent_failed_and_backlog(viewer_client, seeded_queue):
    add_hourly_stats(seeded_queue, "inventory", hours_ago=5, sent=8, backlog=120)

    chart = viewer_client.get(reverse("queue_dashboard_data")).json()["chart"]

    assert len(chart["labels"]) == len(chart["sent"]) == len(chart["backlog"]) == 24
    assert chart["sent"][-1] == 40 and chart["sent"][-3] == 300 and chart["sent"][-6] == 8
    assert chart["failed"][-1] == 2
    assert chart["backlog"][-6] == 120
    # Now: the pending count of the table (3 Pricing + 2 Inventory).
    assert chart["backlog"][-1] == 5
    assert chart["backlog"][-2] is None


def test_the_page_carries_the_chart_and_refreshes_from_the_json(viewer_client, seeded_queue):
    html = viewer_client.get(reverse("queue_dashboard")).content.decode()

    assert f'data-refresh-url="{reverse("queue_dashboard_data")}"' in html
    assert 'data-refresh-seconds="10"' in html
    assert '<script id="queue-chart-data" type="application/json">' in html
    assert "/static/vendor/chartjs/chart.umd.min.js" in html
    assert "/static/message_queue/queue_dashboard.js" in html


def test_every_cell_of_the_page_is_refreshed_by_the_json(viewer_client, seeded_queue):
    html = viewer_client.get(reverse("queue_dashboard")).content.decode()
    cells = viewer_client.get(reverse("queue_dashboard_data")).json()["cells"]

    for cell_id, text in cells.items():
        assert f'data-cell="{cell_id}">{text}<' in html, cell_id


def test_an_empty_queue_shows_the_getting_started_steps(viewer_client):
    html = viewer_client.get("/").content.decode()

    assert "data-getting-started" in html
    assert "1. Connect" in html and "2. Initialize" in html
    assert viewer_client.get(reverse("queue_dashboard_data")).json()["empty"] is True


def test_counts_link_to_the_messages_behind_them(viewer_client, seeded_queue):
    html = viewer_client.get(reverse("queue_dashboard")).content.decode()

    assert (
        f'<a href="{reverse("message_search")}?profile=default&amp;entity=price&amp;'
        'status=pending" data-cell="default:price:pending">3</a>'
    ) in html
    assert (
        f'<a href="{reverse("reprocess_failed")}?profile=default&amp;entity=price" '
        'data-cell="default:price:failed">2</a>'
    ) in html


def test_last_hour_covers_this_hour_and_the_previous_one():
    profile = get_profile()
    add_hourly_stats(profile, hours_ago=1, sent=5)
    add_hourly_stats(profile, hours_ago=2, sent=50)

    price = queue_summary().profiles[0].entities[0]

    assert (price.sent_last_hour, price.sent_24h) == (5, 55)


@pytest.mark.parametrize("url_name", ["queue_dashboard", "queue_dashboard_data"])
def test_a_user_without_a_role_gets_403(nobody_client, url_name):
    assert nobody_client.get(reverse(url_name)).status_code == 403
