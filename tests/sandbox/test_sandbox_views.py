"""The sandbox through Django: both simulators mounted, the demo page, the control endpoint."""

from __future__ import annotations

import base64
import importlib
import socket

import pytest
import requests
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings
from django.urls import clear_url_caches, reverse

import connector.urls
from connector.acumatica import AcumaticaClient, AcumaticaSettings
from connector.acumatica_project import connector_project
from connector.magento import MagentoAuthError, MagentoClient
from message_queue.models import Message
from sandbox import demo
from sandbox.demo import (
    ACUMATICA_PASSWORD,
    ACUMATICA_TENANT,
    ACUMATICA_USERNAME,
    DEMO_CATALOG,
    MAGENTO_TOKEN,
    acumatica_simulator,
    ensure_sandbox_profile,
    magento_simulator,
)
from sandbox.views import CONTROL_SECRET_HEADER
from setup_params.models import Profile

SESSION_COOKIES = {"ASP.NET_SessionId", ".ASPXAUTH", "UserBranch", "Locale", "requestid"}


@pytest.fixture(autouse=True)
def fresh_simulators():
    demo.reset_simulators()
    yield
    demo.reset_simulators()


@pytest.fixture
def live_sandbox(live_server, settings):
    """The sandbox profile pointing at the live server, which also receives the pushes."""
    settings.CONNECTOR_BASE_URL = live_server.url
    return ensure_sandbox_profile()


def publish_push_notifications(base_url: str, profile: Profile) -> None:
    """Import and publish the connector's project through the mounted Acumatica, as
    Initialize does (without the rest of Initialize: the profile's state is left alone)."""
    project = connector_project(profile)
    with requests.Session() as http:
        api = base_url + "/sandbox/acumatica"
        credentials = {
            "name": ACUMATICA_USERNAME, "password": ACUMATICA_PASSWORD, "tenant": ACUMATICA_TENANT
        }
        assert http.post(f"{api}/entity/auth/login", json=credentials).status_code == 204
        imported = http.post(f"{api}/CustomizationApi/import", json={
            "projectName": project.name, "projectDescription": project.description,
            "projectLevel": 0, "isReplaceIfExists": True,
            "projectContentBase64": base64.b64encode(project.package()).decode(),
        })
        assert imported.status_code == 200
        http.post(f"{api}/CustomizationApi/publishBegin",
                  json={"projectNames": [project.name], "tenantMode": "Current"})
        for _ in range(10):
            status = http.post(f"{api}/CustomizationApi/publishEnd", json={}).json()
            if status["isCompleted"] or status["isFailed"]:
                break
        assert status["isCompleted"]
        http.post(f"{api}/entity/auth/logout")
    published = acumatica_simulator().published_push_notifications()
    assert {push["address"] for push in published} == {profile.push_url}


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# --- the demo catalog and the profile ----------------------------------------------------------


def test_both_simulators_start_with_the_same_twenty_skus_prices_and_stock():
    magento, acumatica = magento_simulator(), acumatica_simulator()
    assert len(DEMO_CATALOG) == 20
    for item in DEMO_CATALOG:
        assert acumatica.price_of(item.sku) == magento.price_of(item.sku) == item.price
        assert magento.quantity_of(item.sku, "default") == acumatica.stock_of(item.sku, "MAIN")
        assert magento.quantity_of(item.sku, "east") == acumatica.stock_of(item.sku, "EAST")
    assert magento_simulator() is magento and acumatica_simulator() is acumatica


@pytest.mark.django_db
def test_ensure_sandbox_profile_points_at_both_mounts_and_is_idempotent(settings):
    settings.CONNECTOR_BASE_URL = "http://demo.test:8000"
    profile = ensure_sandbox_profile()
    magento = profile.magento_settings
    acumatica = profile.acumatica_settings
    assert magento.magento_url == "http://demo.test:8000/sandbox/magento"
    assert magento.token == MAGENTO_TOKEN == magento_simulator().token
    assert acumatica.instance_url == "http://demo.test:8000/sandbox/acumatica"
    assert (acumatica.username, acumatica.password, acumatica.tenant, acumatica.auth) == (
        ACUMATICA_USERNAME, ACUMATICA_PASSWORD, ACUMATICA_TENANT, "cookie"
    )
    assert acumatica.client_id == acumatica_simulator().client_id
    assert profile.warehouse_source_map() == {"MAIN": "default", "EAST": "east"}
    queue = profile.queue_settings
    assert (queue.check_process_time, queue.process_sleep_time) == (50, 2)

    queue.process_sleep_time = 7
    queue.save()
    secret = profile.push_secret
    settings.CONNECTOR_BASE_URL = "http://other.test"
    again = ensure_sandbox_profile()
    assert Profile.objects.filter(name="sandbox").count() == 1
    assert again.magento_settings.magento_url == "http://other.test/sandbox/magento"
    assert again.queue_settings.process_sleep_time == 7  # the operator's choice stays
    assert again.push_secret == secret


@pytest.mark.django_db
def test_sandbox_setup_prints_the_urls(settings, capsys):
    settings.CONNECTOR_BASE_URL = "http://127.0.0.1:8000"
    call_command("sandbox_setup")
    out = capsys.readouterr().out
    assert "http://127.0.0.1:8000/sandbox/magento" in out
    assert "http://127.0.0.1:8000/sandbox/acumatica" in out
    assert "http://127.0.0.1:8000/lifecycle/?profile=sandbox" in out
    assert Profile.objects.filter(name="sandbox").exists()


@pytest.mark.django_db
def test_sandbox_setup_fails_when_the_sandbox_is_off(settings):
    settings.SANDBOX_ENABLED = False
    with pytest.raises(CommandError) as failure:
        call_command("sandbox_setup")
    assert failure.value.returncode == 1
    assert "SANDBOX_ENABLED is off" in str(failure.value)
    assert not Profile.objects.filter(name="sandbox").exists()


# --- the mounted simulators -----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_magento_mount_answers_like_the_simulator(live_server):
    with MagentoClient(live_server.url + "/sandbox/magento", MAGENTO_TOKEN) as client:
        report = client.test_connection()
        result = client.post_base_prices([{"sku": "AALEGO500", "price": 44.5}])
    assert report.msi_available
    assert "default" in [store.code for store in report.stores]
    assert result.failures == []
    assert magento_simulator().price_of("AALEGO500") == 44.5
    assert magento_simulator().count("/rest/default/V1/products/base-prices", "POST") == 1


@pytest.mark.django_db(transaction=True)
def test_magento_mount_refuses_a_wrong_token_as_magento_does(live_server):
    with MagentoClient(live_server.url + "/sandbox/magento", "not-the-token") as client:
        with pytest.raises(MagentoAuthError):
            client.test_connection()


@pytest.mark.django_db(transaction=True)
def test_acumatica_mount_signs_in_with_cookies_and_frees_the_seat(live_server):
    settings = AcumaticaSettings(
        instance_url=live_server.url + "/sandbox/acumatica",
        tenant=ACUMATICA_TENANT, username=ACUMATICA_USERNAME, password=ACUMATICA_PASSWORD,
    )
    with AcumaticaClient(settings) as client:
        report = client.test_connection()
    assert report.stock_item["InventoryID"] == "AABACKPACK"  # the first by InventoryID
    assert ("Default", "24.200.001") in report.endpoints
    simulator = acumatica_simulator()
    assert simulator.count("/entity/auth/login", "POST") == 1
    assert simulator.count("/entity/auth/logout", "POST") == 1
    assert simulator.seats_in_use == 0


@pytest.mark.django_db
def test_the_sign_in_answer_sets_each_cookie_and_they_open_the_api(client):
    credentials = {
        "name": ACUMATICA_USERNAME, "password": ACUMATICA_PASSWORD, "tenant": ACUMATICA_TENANT
    }
    signed_in = client.post(
        "/sandbox/acumatica/entity/auth/login", credentials, content_type="application/json"
    )
    assert signed_in.status_code == 204
    assert set(signed_in.cookies) == SESSION_COOKIES
    assert signed_in.cookies["ASP.NET_SessionId"]["httponly"]
    assert signed_in.cookies["Locale"].value.startswith("Culture=en-US&TimeZone=")
    assert acumatica_simulator().seats_in_use == 1

    items = client.get("/sandbox/acumatica/entity/Default/24.200.001/StockItem?$top=2")
    assert items.status_code == 200
    assert [row["InventoryID"]["value"] for row in items.json()] == ["AABACKPACK", "AACABLEUSB"]

    assert client.post("/sandbox/acumatica/entity/auth/logout").status_code == 204
    assert acumatica_simulator().seats_in_use == 0
    assert client.get("/sandbox/acumatica/entity/Default/24.200.001/StockItem").status_code == 401


@pytest.mark.django_db
def test_acumatica_links_point_at_the_mount(client):
    root = client.get("/sandbox/acumatica/entity").json()
    assert root["endpoints"][0]["href"].startswith("http://testserver/sandbox/acumatica/entity/")


@pytest.mark.django_db
def test_a_dropped_connection_answers_502_with_an_empty_body(client):
    magento_simulator().fail_next(1, "drop")
    response = client.get("/sandbox/magento/rest/default/V1/modules")
    assert response.status_code == 502
    assert response.content == b""


# --- the demo page ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_sandbox_page_shows_both_catalogs(viewer_client):
    html = viewer_client.get("/sandbox/").content.decode()
    assert html.count('data-cell="acumatica:AALEGO500:') == 3  # price, MAIN, EAST
    assert html.count('data-cell="magento:AALEGO500:') == 3  # price, default, east
    assert '<th scope="col" class="text-end">MAIN</th>' in html
    assert '<th scope="col" class="text-end">EAST</th>' in html
    assert '<th scope="col" class="text-end">default</th>' in html
    assert '<th scope="col" class="text-end">east</th>' in html
    assert '<td class="text-end" data-cell="magento:AALEGO500:price">49.99</td>' in html
    assert '<td class="text-end" data-cell="acumatica:AALEGO500:stock:0">120</td>' in html
    assert "data-read-only" in html and "data-simulate-form" not in html


@pytest.mark.django_db
def test_a_manager_gets_the_simulate_button_and_the_initialize_hint(manager_client):
    html = manager_client.get("/sandbox/").content.decode()
    assert "Simulate changes in Acumatica" in html
    assert 'value="5"' in html
    assert "Initialize the sandbox profile first" in html
    assert 'href="/lifecycle/?profile=sandbox"' in html


@pytest.mark.django_db
def test_the_sandbox_link_is_in_the_navigation(viewer_client):
    assert 'href="/sandbox/"' in viewer_client.get("/").content.decode()


@pytest.mark.django_db
def test_the_catalog_json_refreshes_the_page(viewer_client):
    magento_simulator().add_product("ZZNEW00001", 5.0, {"default": 3, "east": 4})
    data = viewer_client.get("/sandbox/catalog.json").json()
    assert data["sources"] == ["default", "east"]
    assert data["warehouses"] == ["MAIN", "EAST"]
    assert {"sku": "ZZNEW00001", "price": 5.0, "quantities": [3.0, 4.0]} in data["magento"]
    assert data["published"] is False and data["deliveries"] == []


@pytest.mark.django_db
def test_simulate_needs_the_manage_permission(viewer_client):
    response = viewer_client.post("/sandbox/simulate", {"count": 5})
    assert response.status_code == 403
    assert acumatica_simulator().deliveries == []


@pytest.mark.django_db
def test_simulate_before_initialize_changes_nothing_and_says_initialize_first(manager_client):
    prices = [acumatica_simulator().price_of(item.sku) for item in DEMO_CATALOG]
    response = manager_client.post("/sandbox/simulate", {"count": 5}, follow=True)
    assert "Initialize the sandbox profile first." in response.content.decode()
    assert [acumatica_simulator().price_of(item.sku) for item in DEMO_CATALOG] == prices


@pytest.mark.django_db(transaction=True)
def test_simulate_pushes_the_changes_to_the_connectors_receiver(live_sandbox, live_server,
                                                                manager_client):
    publish_push_notifications(live_server.url, live_sandbox)

    response = manager_client.post("/sandbox/simulate", {"count": 5}, follow=True)

    html = response.content.decode()
    assert "5 changes simulated in Acumatica" in html
    deliveries = acumatica_simulator().deliveries
    assert len(deliveries) == 5
    assert {delivery.status for delivery in deliveries} == {200}
    assert Message.objects.filter(profile=live_sandbox).count() >= 1
    listed = manager_client.get("/sandbox/catalog.json").json()["deliveries"]
    assert len(listed) == 5 and listed[0]["status"] == 200


@pytest.mark.django_db
def test_a_count_out_of_range_is_refused(manager_client):
    response = manager_client.post("/sandbox/simulate", {"count": 0}, follow=True)
    assert "greater than or equal to 1" in response.content.decode()


# --- the control endpoint and sandbox_changes -------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_sandbox_changes_asks_the_web_process_and_prints_what_changed(live_sandbox, live_server,
                                                                      capsys):
    publish_push_notifications(live_server.url, live_sandbox)
    call_command("sandbox_changes", "--count", "3")
    out = capsys.readouterr().out
    assert "3 changes simulated in Acumatica" in out
    assert "push Magento sandbox " in out and "HTTP 200 after 1 attempt(s)" in out
    assert len(acumatica_simulator().deliveries) == 3


@pytest.mark.django_db(transaction=True)
def test_the_control_endpoint_wants_the_sandbox_push_secret(live_sandbox, live_server):
    url = live_server.url + "/sandbox/control/simulate"
    assert requests.post(url, json={"count": 1}).status_code == 401
    wrong = requests.post(url, json={"count": 1}, headers={CONTROL_SECRET_HEADER: "guess"})
    assert wrong.status_code == 403
    secret = {CONTROL_SECRET_HEADER: live_sandbox.push_secret}
    not_yet = requests.post(url, json={"count": 1}, headers=secret)
    assert not_yet.status_code == 409
    assert "Initialize the sandbox profile first" in not_yet.json()["error"]
    bad_count = requests.post(url, json={"count": 1000}, headers=secret)
    assert bad_count.status_code == 400
    assert acumatica_simulator().deliveries == []


@pytest.mark.django_db
def test_the_control_endpoint_only_takes_posts(client):
    assert client.get("/sandbox/control/simulate").status_code == 405


@pytest.mark.django_db
def test_sandbox_changes_bad_count_is_usage_error():
    with pytest.raises(CommandError) as failure:
        call_command("sandbox_changes", "--count", "0")
    assert failure.value.returncode == 2


@pytest.mark.django_db
def test_sandbox_changes_fails_when_the_web_process_does_not_answer(settings):
    settings.CONNECTOR_BASE_URL = closed_port_url()
    ensure_sandbox_profile()
    with pytest.raises(CommandError) as failure:
        call_command("sandbox_changes", "--count", "2")
    assert failure.value.returncode == 1
    assert "does not answer" in str(failure.value)


@pytest.mark.django_db
def test_sandbox_changes_without_a_sandbox_profile_fails():
    with pytest.raises(CommandError) as failure:
        call_command("sandbox_changes")
    assert failure.value.returncode == 1
    assert "sandbox_setup" in str(failure.value)


# --- SANDBOX_ENABLED off --------------------------------------------------------------------------


@pytest.fixture
def sandbox_off():
    """The URLconf as a process without SANDBOX_ENABLED builds it; restored afterwards."""
    try:
        with override_settings(SANDBOX_ENABLED=False):
            clear_url_caches()
            importlib.reload(connector.urls)
            yield
    finally:
        clear_url_caches()
        importlib.reload(connector.urls)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "method, path",
    [
        ("get", "/sandbox/magento/rest/default/V1/modules"),
        ("post", "/sandbox/acumatica/entity/auth/login"),
        ("post", "/sandbox/control/simulate"),
        ("get", "/sandbox/"),
    ],
)
def test_without_sandbox_enabled_the_sandbox_urls_are_not_served(sandbox_off, manager_client,
                                                                 method, path):
    assert getattr(manager_client, method)(path).status_code == 404


@pytest.mark.django_db
def test_without_sandbox_enabled_the_navigation_has_no_sandbox_link(sandbox_off, manager_client):
    html = manager_client.get("/").content.decode()
    assert "/sandbox/" not in html and ">Sandbox<" not in html


def test_the_sandbox_urls_are_back_after_the_override():
    assert reverse("sandbox_catalog") == "/sandbox/"
    assert reverse("sandbox_magento", kwargs={"path": "rest"}) == "/sandbox/magento/rest"
