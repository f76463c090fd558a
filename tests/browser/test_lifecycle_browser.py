"""The Initialize / Deactivate screen in Chromium: the confirm dialog and the Deactivate radios."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from connector.lifecycle import initialize, processor_schedulers
from sandbox.magento import DEFAULT_TOKEN, MagentoSimulator
from sandbox.server import serve
from setup_params.models import Profile, get_profile

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
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
    expect(dialog.locator(".modal-body")).to_have_text(CONFIRM)
    dialog.get_by_role("button", name="No").click()
    expect(dialog).to_be_hidden()
    expect(state).to_have_text("New (not initialized)")
    assert state_of() == Profile.State.NEW

    page.get_by_role("button", name="Initialize", exact=True).click()
    dialog.get_by_role("button", name="Yes").click()

    expect(page.locator(".alert-success")).to_contain_text("is initialized and active")
    expect(state).to_have_text("Active")
    expect(page.locator("[data-enabled=true]")).to_have_count(2)
    assert state_of() == Profile.State.ACTIVE


def test_pause_activate_and_stop_through_the_deactivate_dialog(connected_profile, lifecycle_page):
    initialize(connected_profile, actor="test")
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
