"""Browser fixtures: Debian's Chromium driven by Playwright, and a page logged in by role.

Playwright's sync API runs an event loop in this thread, so Django would refuse ORM calls
from the test ("SynchronousOnlyOperation") without DJANGO_ALLOW_ASYNC_UNSAFE.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.db import connections

from tests.helpers import skip_or_fail

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
TIMEOUT_MS = 15_000


@pytest.fixture
def browser():
    """Chromium for one test, started after the test's database fixtures.

    Not session-scoped on purpose: while Playwright's event loop runs, Django hands out other
    connection objects (asgiref's Local follows the context); closing them when the test ends
    keeps the next test's database flush from waiting on them.
    """
    if not CHROMIUM.exists():
        skip_or_fail(f"Debian's Chromium is not installed at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()
        connections.close_all()  # the ones the test opened while the loop ran


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def logged_in_page(page, live_server, make_user):
    """`logged_in_page("viewer", role="viewer")`: a user made and logged in via the form."""

    def log_in(username: str, *, role: str | None = None, **extra):
        make_user(username, role=role, **extra)
        page.goto(f"{live_server.url}/accounts/login/")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(f"pw-{username}")
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(f"{live_server.url}/")
        return page

    return log_in


@pytest.fixture
def screenshot(page):
    """`screenshot("setup-saved")` saves the whole page under tests/browser/screenshots/."""

    def save(name: str) -> Path:
        SCREENSHOTS.mkdir(exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return save
