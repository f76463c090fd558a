"""The Initialize / Deactivate screen in Chromium: the confirm dialog, the Deactivate radios,
and Acumatica's publishing progress shown live."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from playwright.sync_api import expect

from connector import provisioning
from connector.lifecycle import initialize, processor_schedulers
from sandbox.acumatica import (
    DEFAULT_PASSWORD,
    DEFAULT_TENANT,
    DEFAULT_USERNAME,
    AcumaticaSimulator,
)
from sandbox.magento import DEFAULT_TOKEN, MagentoSimulator
from sandbox.server import serve
from setup_params.models import Profile, get_profile

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]

CONFIRM = "Are you sure you wish to initialize all features for Magento Connector?"


@pytest.fixture
def connected_profile() -> Profile:
    """The default profile, still `new`, pointing at a served Magento simulator."""
    with serve(MagentoSimulator()) as base_url:
        profile = get_profile("default")
        settings = profile.magento_settings
        settings.magento_url = base_url
        settings.token = DEFAULT_TOKEN
        settings.timeout = 5
        settings.save()
        yield get_profile("default")


@pytest.fixture
def acumatica():
    """A served Acumatica simulator that takes a few seconds to publish, the profile on it."""
    simulator = AcumaticaSimulator(publish_polls=4)
    with serve(simulator) as base_url:
        settings = get_profile("default").acumatica_settings
        settings.instance_url = base_url
        settings.tenant = DEFAULT_TENANT
        settings.username = DEFAULT_USERNAME
        settings.password = DEFAULT_PASSWORD
        settings.timeout = 5
        settings.save()
        yield simulator


@pytest.fixture
def publish_in_a_thread(monkeypatch):
    """The worker's part in a thread of this process, polling publishEnd every second."""
    threads: list[threading.Thread] = []

    def work(run) -> None:
        try:
            provisioning.run_provisioning(run, poll_interval=1.0)
        finally:
            connection.close()  # this thread's own connection

    def start(run) -> None:
        thread = threading.Thread(target=work, args=(run,), daemon=True)
        threads.append(thread)
        thread.start()

    monkeypatch.setattr(provisioning, "start", start)
    yield
    for thread in threads:
        thread.join(timeout=60)


@pytest.fixture
def lifecycle_page(live_server, logged_in_page):
    page = logged_in_page("manager", role="manage")
    page.goto(f"{live_server.url}/lifecycle/")
    return page


def state_of() -> str:
    return Profile.objects.get(name="default").state


def test_initialize_asks_first_no_leaves_the_state_yes_initializes(
    connected_profile, lifecycle_page
):
    page = lifecycle_page
    dialog = page.locator("#initialize-dialog")
    state = page.locator("[data-state]")
    expect(state).to_have_text("New (not initialized)")

    page.get_by_role("button", name="Initialize", exact=True).click()
    expect(dialog).to_be_visible()
    expect(dialog.locator("[data-confirm]")).to_have_text(CONFIRM)
    expect(dialog.locator("[data-restart-warning]")).to_contain_text(
        "Publishing restarts the Acumatica website"
    )
    dialog.get_by_role("button", name="No").click()
    expect(dialog).to_be_hidden()
    expect(state).to_have_text("New (not initialized)")
    assert state_of() == Profile.State.NEW

    page.get_by_role("button", name="Initialize", exact=True).click()
    dialog.get_by_label("Acumatica is set up by hand (manual import)").check()
    dialog.get_by_role("button", name="Yes").click()

    expect(page.locator(".alert-success")).to_contain_text("is initialized and active")
    expect(state).to_have_text("Active")
    expect(page.locator("[data-enabled=true]")).to_have_count(2)
    assert state_of() == Profile.State.ACTIVE


def test_pause_activate_and_stop_through_the_deactivate_dialog(connected_profile, lifecycle_page):
    initialize(connected_profile, actor="test", manual_acumatica=True)
    page = lifecycle_page
    page.reload()
    state = page.locator("[data-state]")
    dialog = page.locator("#deactivate-dialog")
    expect(state).to_have_text("Active")

    page.get_by_role("button", name="Deactivate", exact=True).click()
    dialog.get_by_label("Pause Sync to Magento").check()
    dialog.get_by_role("button", name="OK").click()
    expect(state).to_have_text("Paused")
    assert state_of() == Profile.State.PAUSED

    page.get_by_role("button", name="Activate", exact=True).click()
    expect(state).to_have_text("Active")
    assert state_of() == Profile.State.ACTIVE

    page.get_by_role("button", name="Deactivate", exact=True).click()
    dialog.get_by_label("Stop Push Notification").check()
    dialog.get_by_role("button", name="OK").click()
    expect(state).to_have_text("Stopped")
    expect(page.locator("[data-enabled=false]")).to_have_count(2)
    assert state_of() == Profile.State.STOPPED
    assert not any(task.enabled for task in processor_schedulers(connected_profile))


def test_push_secret_is_masked_until_show(connected_profile, lifecycle_page):
    field = lifecycle_page.locator("#push-secret")
    expect(field).to_have_attribute("type", "password")

    lifecycle_page.get_by_role("button", name="Show").click()

    expect(field).to_have_attribute("type", "text")
    expect(field).to_have_value(connected_profile.push_secret)
    expect(lifecycle_page.get_by_role("button", name="Hide")).to_be_visible()


def test_initialize_shows_publishing_progress_until_the_profile_is_active(
    connected_profile, acumatica, publish_in_a_thread, lifecycle_page, screenshot
):
    page = lifecycle_page
    state = page.locator("[data-state]")
    expect(page.locator("[data-no-run]")).to_have_text("Nothing published yet.")

    page.get_by_role("button", name="Initialize", exact=True).click()
    page.locator("#initialize-dialog").get_by_role("button", name="Yes").click()

    expect(page.locator(".alert-info")).to_contain_text("Initialize started for profile")
    expect(state).to_have_text("New (not initialized)")
    progress = page.locator("[data-run-progress]")
    expect(progress).to_contain_text("Publishing step")  # updated in place while it runs
    expect(page.locator("[data-run-spinner]")).to_be_visible()
    expect(page.locator("[data-run-log]")).to_contain_text("Validation started.")
    screenshot("lifecycle-publishing")

    expect(state).to_have_text("Active", timeout=30_000)  # the page reloads when it ends
    expect(page.locator("[data-run-status]")).to_have_text("Succeeded")
    expect(progress).to_contain_text("push notifications 'Magento default inventory'")
    expect(page.locator("[data-run-log]")).to_contain_text("Website updated.")
    expect(page.locator("[data-run-spinner]")).to_be_hidden()
    expect(page.locator("[data-enabled=true]")).to_have_count(2)
    assert [push["active"] for push in acumatica.published_push_notifications()] == [True, True]
    assert acumatica.seats_in_use == 0


def test_a_failed_publish_shows_acumatica_s_log_and_keeps_the_state(
    connected_profile, acumatica, publish_in_a_thread, lifecycle_page
):
    acumatica.fail_next_publish(["Compilation failed: MC-Inventory has no column qtyAvail."])
    page = lifecycle_page

    page.get_by_role("button", name="Initialize", exact=True).click()
    page.locator("#initialize-dialog").get_by_role("button", name="Yes").click()

    expect(page.locator("[data-run-status]")).to_have_text("Failed", timeout=30_000)
    expect(page.locator("[data-run-log] tr.table-danger").first).to_contain_text(
        "Compilation failed: MC-Inventory has no column qtyAvail."
    )
    expect(page.locator("[data-state]")).to_have_text("New (not initialized)")
    expect(page.locator("[data-history-kind=provisioning_failed]")).to_have_count(1)
    assert Profile.objects.get(name="default").state == Profile.State.NEW
