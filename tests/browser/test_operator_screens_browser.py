"""The operator screens in Chromium: the dashboard refreshing itself while the processors send,
message search down to the attempts, Reprocess Failed Messages, and a viewer's read-only view."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from connector.models import AuditEntry
from message_queue import views_screens
from message_queue.models import Message, Status
from message_queue.processing import run_pass
from sandbox.magento import DEFAULT_TOKEN, MagentoSimulator
from sandbox.server import serve
from setup_params.models import Profile, get_profile
from tests.message_queue.queue_rows import make_message, make_messages

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]

SKUS = ["AALEGO500", "AALEGO501", "AALEGO502"]


@pytest.fixture
def magento():
    """A served Magento simulator that knows the SKUs, and the default profile, active,
    pointing at it."""
    simulator = MagentoSimulator()
    for sku in SKUS:
        simulator.add_product(sku, price=1.0)
    with serve(simulator) as base_url:
        profile = get_profile()
        settings = profile.magento_settings
        settings.magento_url = base_url
        settings.token = DEFAULT_TOKEN
        settings.timeout = 5
        settings.save()
        Profile.objects.filter(pk=profile.pk).update(state=Profile.State.ACTIVE)
        yield simulator


@pytest.fixture
def fast_refresh(monkeypatch):
    monkeypatch.setattr(views_screens, "DASHBOARD_REFRESH_SECONDS", 1)


def cell(page, cell_id: str):
    return page.locator(f'[data-cell="{cell_id}"]')


def test_the_dashboard_shows_the_queue_and_updates_without_a_reload_when_messages_are_sent(
    magento, fast_refresh, logged_in_page, live_server, screenshot
):
    profile = get_profile()
    for sku in SKUS:
        make_message(profile, sku=sku)
    make_messages(profile, 2, status=Status.FAILED)
    make_message(profile, entity="inventory", status=Status.SKIPPED)

    page = logged_in_page("viewer", role="viewer")  # the home page is the dashboard

    expect(page.get_by_role("heading", name="Queue", exact=True)).to_be_visible()
    expect(cell(page, "default:price:pending")).to_have_text("3")
    expect(cell(page, "default:price:failed")).to_have_text("2")
    expect(cell(page, "default:inventory:skipped")).to_have_text("1")
    expect(cell(page, "default:price:sent_24h")).to_have_text("0")
    expect(cell(page, "default:state")).to_contain_text("Active since")
    page.evaluate("window.loadedOnce = true")

    report = run_pass(get_profile(), "price")
    assert report.sent == 3

    expect(cell(page, "default:price:pending")).to_have_text("0")
    expect(cell(page, "default:price:sent_24h")).to_have_text("3")
    expect(cell(page, "default:price:sent_last_hour")).to_have_text("3")
    expect(cell(page, "default:price:last_sent")).not_to_have_text("—")
    # The same page, not a reload; the chart got the new figures too.
    assert page.evaluate("window.loadedOnce") is True
    assert page.evaluate("Chart.getChart('queue-chart').data.datasets[0].data.at(-1)") == 3
    assert page.evaluate("Chart.getChart('queue-chart').data.datasets[2].data.at(-1)") == 0
    screenshot("queue-dashboard")


def test_search_by_sku_finds_a_sent_message_and_shows_its_attempts(
    magento, logged_in_page, live_server, screenshot
):
    profile = get_profile()
    for sku in SKUS:
        make_message(profile, sku=sku)
    run_pass(get_profile(), "price")
    sent = Message.objects.get(sku="AALEGO501")

    page = logged_in_page("viewer", role="viewer")
    page.get_by_role("link", name="Search messages").click()
    page.get_by_label("SKU").fill("AALEGO501")
    page.get_by_role("button", name="Filter").click()

    results = page.locator("[data-message-results] tbody tr")
    expect(results).to_have_count(1)
    expect(results.first).to_contain_text("Sent")
    results.first.get_by_role("link", name=str(sent.pk)).click()

    expect(page.get_by_role("heading", name=re.compile("Pricing AALEGO501"))).to_be_visible()
    expect(page.locator("[data-payload]")).to_contain_text('"sku": "AALEGO501"')
    attempts = page.locator("[data-attempts] tbody tr")
    expect(attempts).to_have_count(1)
    expect(attempts.first).to_contain_text("/V1/products/base-prices")
    expect(attempts.first).to_contain_text("200")
    expect(attempts.first).to_contain_text(" ms")
    screenshot("message-detail")


@pytest.fixture
def failures():
    profile = get_profile()
    invalid = make_messages(profile, 3, status=Status.FAILED,
                            last_error="Invalid attribute price = -1.")
    internal = make_message(profile, sku="PRICE-500", status=Status.FAILED,
                            last_error="Internal Error. Report ID: webapi-1", last_http_status=500)
    unknown = make_message(profile, sku="NO-SUCH-SKU", entity="inventory", status=Status.SKIPPED,
                           last_error="Requested product doesn't exist")
    return {"invalid": invalid, "internal": internal, "unknown": unknown}


def rows(page):
    return page.locator("[data-failed-messages] tbody tr")


def test_filter_reprocess_all_that_match_and_dismiss_with_a_reason(
    failures, logged_in_page, live_server, screenshot
):
    page = logged_in_page("manager", role="manage")
    page.get_by_role("link", name="Reprocess Failed Messages").click()
    expect(rows(page)).to_have_count(5)

    page.get_by_label("Error text").fill("invalid attribute")
    page.get_by_role("button", name="Filter").click()
    expect(rows(page)).to_have_count(3)

    page.get_by_role("button", name="Reprocess all 3 that match").click()
    dialog = page.locator("#confirm-modal")
    expect(dialog).to_be_visible()
    expect(dialog.locator("[data-confirm-text]")).to_contain_text(
        "Reprocess all 3 messages that match the filter?"
    )
    screenshot("reprocess-failed-confirm")
    dialog.get_by_role("button", name="Reprocess 3 messages").click()

    expect(page.locator(".alert-success[role=alert]")).to_contain_text("3 messages reprocessed")
    expect(page.locator("[data-no-failed-messages]")).to_be_visible()
    assert all(
        message.status == Status.PENDING and message.attempts == 0
        for message in Message.objects.filter(pk__in=[m.pk for m in failures["invalid"]])
    )
    assert Message.objects.get(pk=failures["internal"].pk).status == Status.FAILED

    page.get_by_role("link", name="Clear").click()
    expect(rows(page)).to_have_count(2)
    page.get_by_label(f"Select message {failures['unknown'].pk}").check()
    page.get_by_role("button", name="Dismiss selected…").click()
    expect(dialog.locator("[data-confirm-text]")).to_contain_text(
        "Dismiss the 1 message selected?"
    )
    dialog.get_by_role("button", name="Dismiss 1 message").click()
    expect(dialog.locator(".invalid-feedback")).to_be_visible()  # a reason is required
    dialog.get_by_label("Reason for dismissing").fill("SKU retired in Magento")
    dialog.get_by_role("button", name="Dismiss 1 message").click()

    expect(page.locator(".alert-success[role=alert]")).to_contain_text("1 message dismissed")
    expect(rows(page)).to_have_count(1)
    expect(page.locator("[data-failed-messages]")).not_to_contain_text("NO-SUCH-SKU")

    page.get_by_role("link", name="Audit log").click()
    entry = page.locator("[data-audit-log] tbody tr").first
    expect(entry).to_contain_text("Dismissed messages")
    expect(entry).to_contain_text("SKU retired in Magento")
    expect(entry).to_contain_text("manager")
    screenshot("audit-log")


def test_a_viewer_sees_no_action_buttons_and_gets_403_posting_one(
    failures, logged_in_page, live_server, screenshot
):
    page = logged_in_page("viewer", role="viewer")
    page.goto(f"{live_server.url}/queue/failed/")

    expect(rows(page)).to_have_count(5)
    expect(page.locator("[data-read-only]")).to_be_visible()
    expect(page.locator("[data-actions]")).to_have_count(0)
    expect(page.locator("input[name=ids]")).to_have_count(0)
    expect(page.get_by_role("button", name=re.compile("Reprocess|Dismiss"))).to_have_count(0)
    screenshot("reprocess-failed-viewer")

    token = page.locator("input[name=csrfmiddlewaretoken]").first.get_attribute("value")
    response = page.request.post(
        f"{live_server.url}/queue/failed/",
        form={"csrfmiddlewaretoken": token, "action": "reprocess", "scope": "matching"},
        headers={"Referer": f"{live_server.url}/queue/failed/"},
    )

    assert response.status == 403
    assert "CSRF" not in response.text()
    assert Message.objects.filter(status__in=[Status.FAILED, Status.SKIPPED]).count() == 5
    assert not AuditEntry.objects.filter(kind=AuditEntry.Kind.REPROCESS).exists()
