"""Setup Parameters in a real browser: log in, save, see errors, test the Magento connection."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from sandbox.magento import MagentoSimulator
from sandbox.server import serve
from setup_params.models import get_profile

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]

TOKEN = "browser-magento-token-51f0"


def open_setup_parameters(page, live_server):
    page.goto(f"{live_server.url}/setup/")
    expect(page.get_by_role("heading", name="Setup Parameters")).to_be_visible()
    return page


def type_connection(page, url: str, token: str) -> None:
    page.get_by_label("Magento URL").fill(url)
    page.get_by_label("Bearer Token", exact=True).fill(token)
    page.get_by_label("Confirm Bearer Token").fill(token)


def test_a_manager_logs_in_through_the_form_and_saves_settings(
    logged_in_page, live_server, screenshot
):
    page = open_setup_parameters(logged_in_page("manager", role="manage"), live_server)

    type_connection(page, "https://shop.example.com/rest/default/V1", TOKEN)
    page.get_by_label("Batch Count").fill("15")
    page.get_by_role("button", name="Save").click()

    expect(page.locator(".alert-success")).to_contain_text("Settings saved")
    expect(page.locator(".alert-info")).to_contain_text(
        "The Magento URL was cut back to https://shop.example.com"
    )
    expect(page.get_by_label("Magento URL")).to_have_value("https://shop.example.com")
    expect(page.get_by_label("Bearer Token", exact=True)).to_have_value("")
    expect(page.get_by_label("Bearer Token", exact=True)).to_have_attribute(
        "placeholder", "•••• set"
    )
    assert TOKEN not in page.content()
    screenshot("setup-parameters-saved")
    profile = get_profile()
    assert profile.queue_settings.batch_count == 15
    assert profile.magento_settings.token == TOKEN


def test_a_validation_error_shows_next_to_its_field(logged_in_page, live_server, screenshot):
    page = open_setup_parameters(logged_in_page("manager", role="manage"), live_server)

    page.get_by_label("Magento URL").fill("https://shop.example.com")
    page.get_by_label("Process Sleep Time").fill("50")
    page.get_by_role("button", name="Save").click()

    field = page.get_by_label("Process Sleep Time")
    expect(field).to_have_class("numberinput form-control is-invalid")
    expect(page.locator("#id_process_sleep_time_error")).to_have_text(
        "Process sleep time (50 s) must be less than the check process time (50 s)."
    )
    screenshot("setup-parameters-validation-error")
    assert get_profile().queue_settings.process_sleep_time == 5


def test_test_connection_shows_magentos_stores(logged_in_page, live_server, screenshot):
    simulator = MagentoSimulator(token=TOKEN)
    simulator.add_store("fr", 2, website_id=2, base_currency_code="EUR")
    page = open_setup_parameters(logged_in_page("manager", role="manage"), live_server)

    with serve(simulator) as magento_url:
        type_connection(page, magento_url, TOKEN)
        page.get_by_role("button", name="Test Connection").click()
        result = page.locator("[data-test-connection-result]")

        expect(result).to_have_class("alert alert-success")
        expect(result).to_contain_text("Test Connection succeeded.")
        expect(result).to_contain_text("fr (id 2, website 2, base currency EUR)")
        expect(result.locator("tbody tr")).to_have_count(2)
        screenshot("setup-parameters-test-connection")

    assert get_profile().magento_settings.magento_url == ""


def test_test_connection_explains_a_refused_token(logged_in_page, live_server, screenshot):
    simulator = MagentoSimulator(token=TOKEN)
    page = open_setup_parameters(logged_in_page("manager", role="manage"), live_server)

    with serve(simulator) as magento_url:
        type_connection(page, magento_url, "a-wrong-token")
        page.get_by_role("button", name="Test Connection").click()
        result = page.locator("[data-test-connection-result]")

        expect(result).to_have_class("alert alert-danger")
        expect(result).to_contain_text("Magento refused the access token (HTTP 401")
        expect(result).to_contain_text(
            "Allow OAuth Access Tokens to be used as standalone Bearer tokens"
        )
        screenshot("setup-parameters-test-connection-401")


def test_a_viewer_sees_the_page_read_only(logged_in_page, live_server, screenshot):
    page = open_setup_parameters(logged_in_page("viewer", role="viewer"), live_server)

    inputs = page.locator("[data-setup-parameters-form] input:not([type=hidden])")
    expect(inputs.first).to_be_visible()
    for index in range(inputs.count()):
        expect(inputs.nth(index)).to_be_disabled()
    expect(page.get_by_role("button", name="Save")).to_have_count(0)
    expect(page.get_by_role("button", name="Test Connection")).to_have_count(0)
    expect(page.locator("[data-read-only]")).to_be_visible()
    screenshot("setup-parameters-viewer")
