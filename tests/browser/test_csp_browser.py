"""The Content-Security-Policy in Chromium (issue 7, security 4): every screen loads without a
single violation, and what runs on them (the dashboard's refresh, its chart, the dialogs, the
push secret's Show button, the sandbox page's refresh) still works under the policy."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from connector.security import CONTENT_SECURITY_POLICY
from message_queue import views_screens
from message_queue.models import Message, Status
from sandbox import views as sandbox_views
from setup_params.models import get_profile
from tests.message_queue.queue_rows import make_message, make_messages

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]

# Playwright injects this through the DevTools protocol, so the page's policy does not apply
# to it: each violation the page causes is written to the console, where the test reads it.
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI || "inline"}`
                + ` at ${event.sourceFile}:${event.lineNumber}`);
});
"""


@pytest.fixture
def violations(page) -> list[str]:
    """What the console said about the policy, on every page the test opens."""
    seen: list[str] = []
    page.add_init_script(REPORT_VIOLATIONS)
    page.on("console", lambda message: seen.append(f"{page.url}: {message.text}")
            if "Content Security Policy" in message.text or "CSP violation" in message.text
            else None)
    return seen


@pytest.fixture
def queue_rows():
    profile = get_profile()
    make_message(profile, sku="AALEGO500")
    make_messages(profile, 2, status=Status.FAILED)
    return Message.objects.order_by("pk").first()


@pytest.fixture
def fast_refresh(monkeypatch):
    monkeypatch.setattr(views_screens, "DASHBOARD_REFRESH_SECONDS", 1)
    monkeypatch.setattr(sandbox_views, "REFRESH_SECONDS", 1)


SCREENS = [
    "/",
    "/queue/",
    "/setup/",
    "/acumatica/connection/",
    "/lifecycle/",
    "/queue/messages/",
    "/queue/messages/{message}/",
    "/queue/failed/",
    "/audit/",
    "/sandbox/",
    "/sync/",
    "/sync/reconcile/",
    "/admin/",
    "/admin/setup_params/profile/",
    "/admin/setup_params/profile/{profile}/change/",
]


def test_every_screen_loads_without_a_policy_violation(
    logged_in_page, live_server, violations, queue_rows
):
    page = logged_in_page("boss", role="manage", is_staff=True, is_superuser=True)
    profile = get_profile()

    for screen in SCREENS:
        path = screen.format(message=queue_rows.pk, profile=profile.pk)
        response = page.goto(live_server.url + path)
        assert response.status == 200, path
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY, path
        page.wait_for_load_state("load")

    assert violations == []


def log_in(page, live_server, username: str, password: str) -> None:
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def test_the_login_logout_and_locked_out_pages_load_without_a_policy_violation(
    page, live_server, violations, make_user
):
    make_user("viewer", role="viewer")
    log_in(page, live_server, "viewer", "pw-viewer")
    page.wait_for_url(f"{live_server.url}/")
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Log in to the connector")).to_be_visible()

    for _ in range(5):
        log_in(page, live_server, "viewer", "not-the-password")
    expect(page.locator("[data-locked-out]")).to_contain_text("Too many failed logins")

    assert violations == []


def test_the_dashboard_refreshes_and_draws_its_chart_under_the_policy(
    logged_in_page, live_server, violations, queue_rows, fast_refresh
):
    page = logged_in_page("viewer", role="viewer")
    page.goto(f"{live_server.url}/queue/")

    dashboard = page.locator("[data-queue-dashboard]")
    expect(dashboard).to_have_attribute("data-refreshes", re.compile(r"^(?:[2-9]|\d{2,})$"),
                                        timeout=10_000)
    assert page.evaluate(
        "() => window.Chart.getChart(document.getElementById('queue-chart')) !== undefined"
    )
    assert violations == []


def test_dialogs_and_the_push_secret_button_work_under_the_policy(
    logged_in_page, live_server, violations, queue_rows
):
    page = logged_in_page("boss", role="manage")
    page.goto(f"{live_server.url}/lifecycle/")

    page.get_by_role("button", name="Initialize", exact=True).click()
    expect(page.locator("#initialize-dialog")).to_be_visible()
    page.locator("#initialize-dialog").get_by_role("button", name="No").click()
    expect(page.locator("#initialize-dialog")).to_be_hidden()
    secret = page.locator("#push-secret")
    expect(secret).to_have_attribute("type", "password")
    page.locator("#push-secret-toggle").click()
    expect(secret).to_have_attribute("type", "text")
    expect(secret).to_have_value(get_profile().push_secret)

    page.goto(f"{live_server.url}/queue/failed/")
    page.get_by_role("button", name="Reprocess all 2 that match").click()
    expect(page.locator("[data-confirm-modal]")).to_be_visible()
    expect(page.locator("[data-confirm-text]")).to_contain_text("2 messages")
    assert violations == []


def test_the_sandbox_page_refreshes_under_the_policy(
    logged_in_page, live_server, violations, fast_refresh
):
    page = logged_in_page("viewer", role="viewer")
    page.goto(f"{live_server.url}/sandbox/")

    expect(page.locator("[data-refreshed-at]")).not_to_have_text("now", timeout=10_000)
    expect(page.locator("[data-refresh-error]")).to_be_hidden()
    assert violations == []


def test_a_violation_would_be_seen(logged_in_page, live_server, violations):
    """The watch itself works: inline code in the page is refused and reported."""
    page = logged_in_page("viewer", role="viewer")
    page.goto(f"{live_server.url}/audit/")

    page.evaluate("""() => {
        const script = document.createElement("script");
        script.textContent = "window.inlineRan = true";
        document.body.appendChild(script);
    }""")

    expect(page.locator("body")).to_be_visible()
    page.wait_for_timeout(200)
    assert page.evaluate("() => window.inlineRan === undefined")
    assert any("script-src" in line for line in violations)
