"""Acumatica Connection in a real browser: cookie sign-in tested and saved; OAuth 2.0 signed in
through the simulator's authorize page and back to the connector's callback."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from sandbox.acumatica import AcumaticaSimulator
from sandbox.server import serve
from setup_params.models import get_profile

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]

PASSWORD = "browser-acumatica-password-3e5d"
CLIENT_SECRET = "browser-acumatica-secret-7a9c"
TENANT = "MyStore"


@pytest.fixture
def acumatica():
    simulator = AcumaticaSimulator(api_seats=1, password=PASSWORD, client_secret=CLIENT_SECRET,
                                   tenant=TENANT)
    with serve(simulator) as url:
        simulator.url = url
        yield simulator


def open_acumatica_connection(page, live_server):
    page.goto(f"{live_server.url}/acumatica/connection/")
    expect(page.get_by_role("heading", name="Acumatica Connection")).to_be_visible()
    return page


def type_instance(page, url: str) -> None:
    page.get_by_label("Instance URL").fill(url)
    page.get_by_label("Tenant", exact=True).fill(TENANT)
    page.get_by_label("Timeout (s)").fill("5")


def test_cookie_sign_in_is_tested_against_acumatica_then_saved(
    logged_in_page, live_server, acumatica, screenshot
):
    page = open_acumatica_connection(logged_in_page("manager", role="manage"), live_server)

    type_instance(page, f"{acumatica.url}/entity/Default/24.200.001/")
    page.get_by_label("Cookie (username and password)").check()
    page.get_by_label("Username", exact=True).fill("admin")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Test Connection").click()

    result = page.locator("[data-test-connection-result]")
    expect(result).to_have_class(re.compile(r"\balert-success\b"))
    expect(result).to_contain_text("Test Connection succeeded.")
    expect(page.locator(".alert-info")).to_contain_text(
        f"The instance URL was cut back to {acumatica.url} (the connector adds"
    )
    expect(result).to_contain_text("Read stock item AACOMPUT01")
    expect(result.locator("[data-acumatica-endpoints] tbody tr")).to_have_count(3)
    expect(result).to_contain_text("22.200.001, 23.200.001, 24.200.001, 25.200.001")
    expect(page.get_by_label("Password", exact=True)).to_have_value("")
    screenshot("acumatica-connection-test-connection")
    assert acumatica.seats_in_use == 0
    assert get_profile().acumatica_settings.instance_url == ""

    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Save").click()

    expect(page.locator(".alert-success")).to_contain_text("Settings saved")
    expect(page.get_by_label("Instance URL")).to_have_value(acumatica.url)
    expect(page.get_by_label("Password", exact=True)).to_have_attribute("placeholder", "•••• set")
    assert PASSWORD not in page.content()
    screenshot("acumatica-connection-saved")
    stored = get_profile().acumatica_settings
    assert (stored.instance_url, stored.username, stored.password) == (
        acumatica.url, "admin", PASSWORD
    )


def test_oauth_sign_in_with_acumatica_comes_back_authorized(
    logged_in_page, live_server, acumatica, settings, screenshot
):
    settings.CONNECTOR_BASE_URL = live_server.url
    callback_url = f"{live_server.url}/acumatica/oauth/callback/"
    acumatica.register_redirect_uri(callback_url)
    page = open_acumatica_connection(logged_in_page("manager", role="manage"), live_server)

    type_instance(page, acumatica.url)
    page.get_by_label("OAuth 2.0", exact=True).check()
    page.get_by_label("Client ID").fill(acumatica.client_id)
    page.get_by_label("Client secret", exact=True).fill(CLIENT_SECRET)
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".alert-success")).to_contain_text("Settings saved")

    expect(page.locator("[data-oauth-callback-url]")).to_have_value(callback_url)
    expect(page.locator("[data-oauth-status]")).to_contain_text("Not authorized")
    page.get_by_role("button", name="Sign in with Acumatica").click()

    page.wait_for_url(re.compile(r"/acumatica/connection/\?profile=default$"))
    expect(page.locator(".alert-success")).to_contain_text(
        "Signed in with Acumatica: the connector is authorized (OAuth 2.0)."
    )
    expect(page.locator("[data-oauth-status]")).to_contain_text("Authorized.")
    screenshot("acumatica-connection-oauth-signed-in")
    stored = get_profile().acumatica_settings
    assert stored.access_token and stored.refresh_token
    assert stored.access_token not in page.content()
    assert [call.json_body["grant_type"] for call in acumatica.calls("/identity/connect/token")
            ] == ["authorization_code"]

    page.get_by_label("Client secret", exact=True).fill("")
    page.get_by_role("button", name="Test Connection").click()
    result = page.locator("[data-test-connection-result]")
    expect(result).to_contain_text("Test Connection succeeded.")
    expect(result).to_contain_text("OAuth 2.0 token")
    assert acumatica.count("/entity/auth/login") == 0
