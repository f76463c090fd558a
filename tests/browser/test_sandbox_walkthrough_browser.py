"""The sandbox walkthrough in Chromium, as a new user meets it after `make run`.

1 log in, 2 open Initialize for the `sandbox` profile, 3 Initialize (Yes): the connector
publishes its push notifications to the simulated Acumatica, 4 Simulate changes in
Acumatica, 5 watch the new prices and stock arrive in the simulated Magento catalog.

Both simulators run inside the live server (the web process), as under `make run`. The worker
is played by the test: the provisioning run starts in a thread once Initialize commits, and
one `process_queue --once` sends what the receiver stored.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.core.management import call_command
from django.db import connections, transaction
from playwright.sync_api import expect

from connector import provisioning
from connector.models import ProvisioningRun
from sandbox import demo
from setup_params.models import Profile

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]

PUBLISH_WAIT_SECONDS = 30


@pytest.fixture
def sandbox_profile(live_server, settings) -> Profile:
    """`make run`'s sandbox_setup, with the live server as the connector's base URL (the push
    address Initialize publishes is built from it)."""
    demo.reset_simulators()
    settings.CONNECTOR_BASE_URL = live_server.url
    yield demo.ensure_sandbox_profile()
    demo.reset_simulators()


@pytest.fixture
def worker(monkeypatch):
    """The Celery worker's part of Initialize: the provisioning run, in a thread after commit."""
    threads: list[threading.Thread] = []
    monkeypatch.setattr(provisioning, "PUBLISH_POLL_SECONDS", 0.05)

    def provision(run_id: int) -> None:
        try:
            provisioning.run_provisioning(ProvisioningRun.objects.get(pk=run_id))
        finally:
            connections.close_all()

    def start(run: ProvisioningRun) -> None:
        def later() -> None:
            thread = threading.Thread(target=provision, args=(run.pk,), daemon=True)
            threads.append(thread)
            thread.start()

        transaction.on_commit(later)

    monkeypatch.setattr(provisioning, "start", start)
    yield
    for thread in threads:
        thread.join(timeout=PUBLISH_WAIT_SECONDS)


def wait_for_published_push_notifications() -> None:
    deadline = time.monotonic() + PUBLISH_WAIT_SECONDS
    while not demo.acumatica_simulator().published_push_notifications():
        if time.monotonic() > deadline:
            runs = list(ProvisioningRun.objects.values_list("status", "progress"))
            pytest.fail(f"Initialize published nothing to the simulated Acumatica: {runs}")
        time.sleep(0.1)


def price_text(value: float) -> str:
    return f"{value:.2f}"


def quantity_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.2f}"


def magento_cells_behind_acumatica() -> dict[str, str]:
    """The Magento catalog's cells (by data-cell id) that do not show Acumatica's value yet,
    with the text they should show once the connector has sent it."""
    snapshot = demo.catalog_snapshot()
    acumatica = {row["sku"]: row for row in snapshot["acumatica"]}
    source_of = {source: index for index, source in enumerate(snapshot["sources"])}
    behind = {}
    for row in snapshot["magento"]:
        item = acumatica[row["sku"]]
        if row["price"] != item["price"]:
            behind[f"magento:{row['sku']}:price"] = price_text(item["price"])
        for warehouse, stock in zip(snapshot["warehouses"], item["stock"], strict=True):
            index = source_of[demo.WAREHOUSE_SOURCES[warehouse]]
            if row["quantities"][index] != stock:
                behind[f"magento:{row['sku']}:qty:{index}"] = quantity_text(stock)
    return behind


def test_initialize_then_simulated_changes_reach_the_magento_catalog(
    sandbox_profile, worker, live_server, logged_in_page, screenshot
):
    # 1. Log in.
    page = logged_in_page("manager", role="manage")

    # 2. Open Initialize for the sandbox profile.
    page.goto(f"{live_server.url}/lifecycle/?profile=sandbox")
    state = page.locator("[data-state]")
    expect(state).to_have_text("New (not initialized)")

    # 3. Initialize, Yes: the connector publishes its project to the simulated Acumatica.
    page.get_by_role("button", name="Initialize", exact=True).click()
    page.locator("#initialize-dialog").get_by_role("button", name="Yes").click()
    wait_for_published_push_notifications()
    published = demo.acumatica_simulator().published_push_notifications()
    assert {push["address"] for push in published} == {sandbox_profile.push_url}
    page.goto(f"{live_server.url}/lifecycle/?profile=sandbox")
    expect(state).to_have_text("Active")

    # 4. Simulate changes in Acumatica, from the Sandbox page.
    page.get_by_role("link", name="Sandbox", exact=True).click()
    page.get_by_label("Changes").fill("5")
    page.get_by_role("button", name="Simulate changes in Acumatica").click()
    expect(page.locator(".alert-success")).to_contain_text(
        "5 changes simulated in Acumatica"
    )
    expect(page.locator(".alert-success")).to_contain_text("push notifications delivered")
    expect(page.locator("[data-deliveries] [data-status]").first).to_have_text("HTTP 200")
    behind = magento_cells_behind_acumatica()
    assert behind, "five random changes changed no value"

    # 5. The worker sends what the receiver stored; the page shows Magento catching up.
    call_command("process_queue", "--profile", "sandbox", "--once")
    for cell, text in behind.items():
        expect(page.locator(f'[data-cell="{cell}"]')).to_have_text(text)
    assert magento_cells_behind_acumatica() == {}
    screenshot("sandbox-walkthrough")
