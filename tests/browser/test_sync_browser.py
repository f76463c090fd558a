"""The Loads & reconciliation screen in Chromium: an initial load's progress bar moves while a
worker (here a thread) reads a slow Acumatica; Cancel stops it, Resume finishes it, and
nothing reaches Magento twice."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection
from playwright.sync_api import expect

from message_queue import pull, views_sync
from message_queue.models import LoadRun
from sandbox.acumatica import AcumaticaSimulator
from sandbox.magento import DEFAULT_TOKEN, MagentoSimulator
from sandbox.server import serve
from setup_params.models import Profile, get_profile
from tests.message_queue.sync_fixtures import (
    catalog,
    connected_acumatica,
    drain,
    records_sent,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ITEMS = 1_500


@pytest.fixture
def simulators():
    """Magento and a slow Acumatica (each page takes a while), the active profile on both."""
    magento = MagentoSimulator()
    acumatica = AcumaticaSimulator(catalog=False)
    with serve(magento) as magento_url:
        profile = get_profile("default")
        settings = profile.magento_settings
        settings.magento_url = magento_url
        settings.token = DEFAULT_TOKEN
        settings.timeout = 5
        settings.save()
        queue = profile.queue_settings
        queue.batch_count = 200
        queue.save()
        Profile.objects.filter(pk=profile.pk).update(state=Profile.State.ACTIVE)
        with connected_acumatica(acumatica, profile, page_size=50, batch_size=50):
            catalog(acumatica, magento, ITEMS)
            acumatica.latency_ms = 60
            yield acumatica, magento


@pytest.fixture
def load_in_a_thread(monkeypatch):
    """The worker's part in a thread of this process; the screen polls every 200 ms."""
    threads: list[threading.Thread] = []
    monkeypatch.setattr(views_sync, "SYNC_POLL_MILLISECONDS", 200)

    def work(run: LoadRun) -> None:
        try:
            pull.execute(run)
        finally:
            connection.close()  # this thread's own connection

    def start(run: LoadRun) -> None:
        thread = threading.Thread(target=work, args=(run,), daemon=True)
        threads.append(thread)
        thread.start()

    monkeypatch.setattr(pull, "start", start)
    yield
    for thread in threads:
        thread.join(timeout=60)


@pytest.fixture
def sync_page(live_server, logged_in_page):
    page = logged_in_page("manager", role="manage")
    page.goto(f"{live_server.url}/sync/")
    return page


def progress_of(page) -> float | None:
    try:
        value = page.locator("[data-run] [data-progress]").first.get_attribute(
            "aria-valuenow", timeout=500
        )
    except Exception:  # the page reloads when the run ends
        return None
    return float(value) if value is not None else None


def watch_progress(page, *, until: float = 100.0, seconds: float = 30.0) -> list[float]:
    """The progress bar's values as the screen shows them, until it reaches `until`."""
    seen: list[float] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = progress_of(page)
        if value is not None and (not seen or value != seen[-1]):
            seen.append(value)
        if seen and seen[-1] >= until:
            break
        page.wait_for_timeout(100)
    return seen


def start_price_load(page) -> None:
    page.get_by_label("What to load").select_option("price")
    page.get_by_role("button", name="Start initial load").click()
    expect(page.locator(".alert-info")).to_contain_text("Initial load of Pricing started")


def test_the_progress_bar_advances_while_the_load_runs(
    simulators, load_in_a_thread, sync_page, screenshot
):
    acumatica, magento = simulators
    page = sync_page

    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text)
            if message.type == "error" else None)
    start_price_load(page)
    seen = watch_progress(page)

    moving = [value for value in seen if 0 < value < 100]
    assert len(moving) >= 3, seen
    assert moving == sorted(moving)
    expect(page.locator("[data-run] [data-run-status]").first).to_have_text("Succeeded",
                                                                         timeout=30_000)
    expect(page.locator("[data-run] [data-run-rows]").first).to_have_text("1,500 / 1,500")
    screenshot("sync-load-succeeded")
    run = LoadRun.objects.get()
    assert (run.status, run.read, run.total) == (LoadRun.Status.SUCCEEDED, ITEMS, ITEMS)
    assert errors == []  # nothing refused by the Content-Security-Policy, no script error


def test_cancel_then_resume_finishes_the_load_without_duplicate_sends(
    simulators, load_in_a_thread, sync_page
):
    acumatica, magento = simulators
    page = sync_page
    start_price_load(page)
    watch_progress(page, until=10)

    page.get_by_role("button", name="Cancel").click()
    expect(page.locator("[data-run] [data-run-status]").first).to_have_text("Cancelled",
                                                                         timeout=30_000)
    cancelled = LoadRun.objects.get()
    assert 0 < cancelled.read < ITEMS and cancelled.next_skip == cancelled.read
    drain()  # the processors send what was stored before the cancel

    page.get_by_role("button", name="Resume").click()
    expect(page.locator(".alert-info")).to_contain_text(f"resumes at row {cancelled.read:,}")
    expect(page.locator("[data-run] [data-run-status]").first).to_have_text("Succeeded",
                                                                         timeout=30_000)
    drain()

    sent = records_sent(magento)
    assert len(sent) == ITEMS and set(sent.values()) == {1}
    assert all(magento.price_of(item) == acumatica.price_of(item) for item in acumatica.items)


def test_the_reconciliation_report_lists_differences_and_fix_all_queues_corrections(
    simulators, load_in_a_thread, live_server, logged_in_page, monkeypatch, screenshot
):
    from message_queue import reconcile

    acumatica, magento = simulators
    for entity in ("price", "inventory"):
        pull.execute(pull.create_run(get_profile("default"), entity))
    drain()
    with magento._lock:
        magento.catalog["SKU00001"].price = 3.33
        magento.catalog["SKU00002"].sources["default"] = 999

    def report_in_a_thread(run) -> None:
        def work() -> None:
            try:
                reconcile.run_report(run)
            finally:
                connection.close()

        threading.Thread(target=work, daemon=True).start()

    monkeypatch.setattr(reconcile, "start", report_in_a_thread)
    page = logged_in_page("manager", role="manage")
    page.goto(f"{live_server.url}/sync/reconcile/")
    page.get_by_role("button", name="Run the report").click()

    expect(page.locator("[data-differences-found]")).to_have_text("2", timeout=30_000)
    expect(page.locator('[data-difference="SKU00001:price"]')).to_contain_text("3.33")
    expect(page.locator('[data-difference="SKU00002:quantity:default"]')).to_contain_text("999")
    page.get_by_role("button", name="Fix all").click()
    expect(page.locator(".alert-success")).to_contain_text("2 corrections queued")
    expect(page.locator("[data-fixed]")).to_have_count(2)
    screenshot("reconcile-fixed")
    drain()
    assert magento.price_of("SKU00001") == acumatica.price_of("SKU00001")
    assert magento.quantity_of("SKU00002") == 2
