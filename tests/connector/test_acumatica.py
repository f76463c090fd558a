"""The Acumatica client against the simulator on a real socket: sessions, errors, OAuth, reads."""

from __future__ import annotations

import io
import socket
import threading
import time
import zipfile
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

import sandbox.acumatica as simulator_module
from connector.acumatica import (
    AUTH_OAUTH2,
    AcumaticaAuthError,
    AcumaticaBusy,
    AcumaticaClient,
    AcumaticaConnectionError,
    AcumaticaCustomizationError,
    AcumaticaDataError,
    AcumaticaEndpointNotFound,
    AcumaticaError,
    AcumaticaInquiryNotFound,
    AcumaticaLoginLimit,
    AcumaticaNotAnInstance,
    AcumaticaOAuthError,
    AcumaticaServerError,
    AcumaticaSettings,
    AcumaticaTimeout,
    AcumaticaUnknownTenant,
    FileLockSlots,
    OAuthTokens,
    classify_response,
    modified_since_filter,
    normalize_instance_url,
    unwrap,
    valid_client_id,
)
from sandbox.acumatica import AcumaticaSimulator
from sandbox.server import serve

PASSWORD = "pw-7c1e5b2d4a6f8e0c"
CLIENT_SECRET = "secret-3f9a7c1e5b2d4a6f"
CALLBACK = "http://connector.test/acumatica/oauth/callback/"


@pytest.fixture
def acumatica() -> AcumaticaSimulator:
    return AcumaticaSimulator(password=PASSWORD, client_secret=CLIENT_SECRET)


@pytest.fixture
def acumatica_url(acumatica):
    with serve(acumatica) as url:
        yield url


def make_settings(url: str, **overrides) -> AcumaticaSettings:
    values = {
        "instance_url": url,
        "tenant": "MyStore",
        "username": "admin",
        "password": PASSWORD,
        "timeout": 5,
    }
    values.update(overrides)
    return AcumaticaSettings(**values)


@pytest.fixture
def client(acumatica_url):
    with AcumaticaClient(make_settings(acumatica_url)) as client:
        yield client


@pytest.fixture
def oauth_settings(acumatica, acumatica_url):
    return make_settings(
        acumatica_url,
        auth=AUTH_OAUTH2,
        client_id=acumatica.client_id,
        client_secret=CLIENT_SECRET,
        username="",
        password="",
    )


class TokenStore:
    """What the Django side does with `on_tokens`: keep the newest tokens."""

    def __init__(self) -> None:
        self.saved: list[tuple[str, str | None, datetime]] = []

    def __call__(self, access_token: str, refresh_token: str | None, expires_at: datetime):
        self.saved.append((access_token, refresh_token, expires_at))


def project_zip(*items: str) -> bytes:
    xml = '<Customization level="0" description="Connector">' + "".join(items) + "</Customization>"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as package:
        package.writestr("project.xml", xml)
    return buffer.getvalue()


def inquiry_item(name: str, design_id: str, table: str) -> str:
    return (
        "<GenericInquiryScreen><data-set><data><GIDesign>"
        f'<row DesignID="{design_id}" Name="{name}" ExposeViaOData="1">'
        f'<GITable Alias="t" Name="{table}" /></row>'
        "</GIDesign></data></data-set></GenericInquiryScreen>"
    )


CONNECTOR_PROJECT = project_zip(
    inquiry_item(
        "MC-Inventory", "11111111-1111-1111-1111-111111111111", "PX.Objects.IN.INSiteStatus"
    ),
    inquiry_item(
        "MC-Prices", "22222222-2222-2222-2222-222222222222", "PX.Objects.IN.InventoryItem"
    ),
)


def paths(simulator: AcumaticaSimulator) -> list[str]:
    return [f"{entry.method} {entry.path.split('?')[0]}" for entry in simulator.requests]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- Test Connection and cookie sessions -----------------------------------------------------


def test_connection_lists_endpoints_reads_one_stock_item_and_signs_out(acumatica, client):
    report = client.test_connection()

    assert paths(acumatica) == [
        "POST /entity/auth/login",
        "GET /entity",
        "GET /entity/Default/24.200.001/StockItem",
        "POST /entity/auth/logout",
    ]
    assert acumatica.requests[0].json_body == {
        "name": "admin",
        "password": "<redacted>",
        "tenant": "MyStore",
    }
    assert ("Default", "25.200.001") in report.endpoints
    assert report.stock_item["InventoryID"] == "AACOMPUT01"
    summary = report.summary()
    assert "Default 22.200.001, 23.200.001, 24.200.001, 25.200.001" in summary
    assert "Read stock item AACOMPUT01 (Computer, desktop) through Default/24.200.001" in summary
    assert acumatica.seats_in_use == 0


def test_fifty_consecutive_test_connections_with_one_seat_never_hit_the_limit(acumatica, client):
    assert acumatica.api_seats == 1

    for _ in range(50):
        client.test_connection()

    assert acumatica.count("/entity/auth/login") == 50
    assert acumatica.count("/entity/auth/logout") == 50
    assert all(entry.status in (200, 204) for entry in acumatica.requests)
    assert acumatica.seats_in_use == 0


def test_session_cookies_are_kept_as_a_whole_jar(acumatica, client):
    with client.session() as api:
        api.get_entities("StockItem", top=1)

    cookie_header = acumatica.calls("/StockItem")[0].headers["Cookie"]
    for name in ("ASP.NET_SessionId", ".ASPXAUTH", "UserBranch", "Locale", "requestid"):
        assert name in cookie_header


def test_session_signs_out_when_the_block_raises(acumatica, client):
    with pytest.raises(RuntimeError):
        with client.session() as api:
            api.first_stock_item()
            raise RuntimeError("the processor failed")

    assert paths(acumatica)[-1] == "POST /entity/auth/logout"
    assert acumatica.seats_in_use == 0


def test_session_signs_out_when_a_call_is_refused(acumatica, client):
    with pytest.raises(AcumaticaDataError):
        with client.session() as api:
            api.get_entities("StockItem", filter="InventoryID is 'AALEGO500'")

    assert paths(acumatica)[-1] == "POST /entity/auth/logout"
    assert acumatica.seats_in_use == 0


def test_signs_in_again_once_when_the_session_expires_mid_operation(acumatica, client):
    with client.session() as api:
        first = api.get_entities("StockItem", top=1)
        acumatica.expire_sessions()
        second = api.get_entities("StockItem", top=1)

    assert unwrap(first)[0]["InventoryID"] == unwrap(second)[0]["InventoryID"] == "AACOMPUT01"
    assert paths(acumatica) == [
        "POST /entity/auth/login",
        "GET /entity/Default/24.200.001/StockItem",
        "GET /entity/Default/24.200.001/StockItem",  # 401
        "POST /entity/auth/login",
        "GET /entity/Default/24.200.001/StockItem",
        "POST /entity/auth/logout",
    ]
    assert [entry.status for entry in acumatica.calls("/StockItem")] == [200, 401, 200]
    assert acumatica.seats_in_use == 0


def test_a_refused_second_sign_in_is_an_auth_error_and_is_not_repeated(acumatica, client):
    with pytest.raises(AcumaticaAuthError):
        with client.session() as api:
            acumatica.fail_next(2, "401")  # the read, then the sign-in again
            api.first_stock_item()

    assert acumatica.count("/entity/auth/login") == 2


# --- the API login limit ----------------------------------------------------------------------


def test_login_limit_is_raised_when_another_client_holds_the_seat(acumatica, acumatica_url):
    other = AcumaticaClient(make_settings(acumatica_url))
    mine = AcumaticaClient(make_settings(acumatica_url))

    with other.session():
        acumatica.reset_log()
        with pytest.raises(AcumaticaLoginLimit) as caught:
            mine.test_connection()
        assert acumatica.login_attempts == 1
        assert paths(acumatica) == ["POST /entity/auth/login"]

    error = caught.value
    assert not error.retryable and error.trips_outage_guard
    assert "10 minutes" in str(error)
    assert "License Monitoring Console (SM604000)" in str(error)
    assert "API Login Limit" in str(error)
    assert PASSWORD not in str(error)


def test_login_limit_answered_with_429_is_the_same_error(acumatica, client, monkeypatch):
    monkeypatch.setattr(simulator_module, "LOGIN_LIMIT_STATUS", 429)
    acumatica.api_seats = 0

    with pytest.raises(AcumaticaLoginLimit):
        client.test_connection()

    assert acumatica.calls("/entity/auth/login")[0].status == 429


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (429, "", "login"),
        (500, '{"message":"An error has occurred.","exceptionMessage":"API Login Limit"}', "login"),
        (400, "API Login Limit", "entity"),
        (503, "<html><body>API Login Limit</body></html>", "customization"),
        (429, '{"error":"slow_down"}', "token"),
    ],
)
def test_login_limit_is_recognised_by_status_or_text(status, body, kind):
    error = classify_response(status, body, kind=kind, endpoint="POST /entity/auth/login")

    assert isinstance(error, AcumaticaLoginLimit)


def test_429_on_a_read_is_a_declined_request_to_retry():
    error = classify_response(429, '{"message":"declined"}', kind="entity", endpoint="GET x")

    assert isinstance(error, AcumaticaServerError) and error.retryable


# --- configuration errors, each with its sentence -----------------------------------------


def test_wrong_credentials_name_the_user_never_the_password(acumatica, acumatica_url):
    client = AcumaticaClient(make_settings(acumatica_url, password="wrong-password-123"))

    with pytest.raises(AcumaticaAuthError) as caught:
        client.test_connection()

    assert "user 'admin'" in str(caught.value)
    assert "wrong user name or password" in str(caught.value)
    assert "Invalid credentials" in str(caught.value)
    assert "wrong-password-123" not in str(caught.value)
    assert caught.value.trips_outage_guard
    assert paths(acumatica) == ["POST /entity/auth/login"]


def test_unknown_tenant_says_where_to_find_the_tenant_name(acumatica, acumatica_url):
    client = AcumaticaClient(make_settings(acumatica_url, tenant="Nowhere"))

    with pytest.raises(AcumaticaUnknownTenant) as caught:
        client.test_connection()

    assert "tenant 'Nowhere'" in str(caught.value)
    assert "Tenants form (SM203520)" in str(caught.value)


def test_missing_endpoint_version_lists_what_the_instance_offers_and_signs_out(
    acumatica, acumatica_url
):
    client = AcumaticaClient(make_settings(acumatica_url, version="21.200.001"))

    with pytest.raises(AcumaticaEndpointNotFound) as caught:
        client.test_connection()

    error = caught.value
    assert error.status_code == 404
    assert "no endpoint Default version 21.200.001" in str(error)
    assert "Default 24.200.001" in str(error) and "Ecommerce 24.200.001" in str(error)
    assert ("Default", "25.200.001") in error.available
    assert paths(acumatica)[-1] == "POST /entity/auth/logout"
    assert acumatica.seats_in_use == 0


def test_a_web_page_where_acumatica_was_due_is_not_an_instance(acumatica, client):
    acumatica.fail_always("html")

    with pytest.raises(AcumaticaNotAnInstance) as caught:
        client.test_connection()

    assert "does not look like an Acumatica instance" in str(caught.value)
    assert "Welcome to nginx!" in str(caught.value)
    assert "without /entity" in str(caught.value)


class PlainWebsite:
    """A web server that is not Acumatica: pages for every path."""

    def __init__(self, status: int) -> None:
        self.status = status

    def handle(self, method, path, headers, body):
        page = b"<html><head><title>Contoso intranet</title></head><body>Hello</body></html>"
        return self.status, {"Content-Type": "text/html"}, page


@pytest.mark.parametrize("status", [200, 404, 405])
def test_a_plain_website_is_not_an_instance(status):
    with serve(PlainWebsite(status)) as url:
        client = AcumaticaClient(make_settings(url))

        with pytest.raises(AcumaticaNotAnInstance) as caught:
            client.test_connection()

    assert "Contoso intranet" in str(caught.value)
    assert caught.value.trips_outage_guard and not caught.value.retryable


def test_an_instance_url_pasted_with_the_api_path_is_cut_back(acumatica, acumatica_url):
    client = AcumaticaClient(make_settings(acumatica_url + "/entity/Default/24.200.001/"))

    report = client.test_connection()

    assert client.instance_url == acumatica_url
    assert report.summary().startswith(f"The instance URL was cut back to {acumatica_url}.")


def test_closed_port_is_connection_refused():
    client = AcumaticaClient(make_settings(f"http://127.0.0.1:{free_port()}"))

    with pytest.raises(AcumaticaConnectionError) as caught:
        client.test_connection()

    assert str(caught.value).startswith("Connection refused by 127.0.0.1:")
    assert caught.value.retryable


def test_unknown_host_cannot_be_resolved():
    client = AcumaticaClient(make_settings("https://erp.acumatica.invalid"))

    with pytest.raises(AcumaticaConnectionError) as caught:
        client.test_connection()

    assert str(caught.value).startswith("Could not resolve host 'erp.acumatica.invalid'")


def test_no_answer_within_the_timeout(acumatica, acumatica_url):
    client = AcumaticaClient(make_settings(acumatica_url, timeout=0.3))
    acumatica.fail_next(1, "timeout")

    with pytest.raises(AcumaticaTimeout) as caught:
        client.test_connection()

    assert str(caught.value) == "Acumatica did not answer within 0.3 s (POST /entity/auth/login)."
    assert caught.value.retryable
    acumatica.release_waiters()


def test_server_error_is_retryable_and_the_session_still_signs_out(acumatica, client):
    with pytest.raises(AcumaticaServerError) as caught:
        with client.session() as api:
            acumatica.fail_next(1, "500")
            api.first_stock_item()

    assert "Object reference not set" in str(caught.value)
    assert caught.value.retryable
    assert paths(acumatica)[-1] == "POST /entity/auth/logout"


def test_secrets_in_an_answer_are_redacted():
    error = classify_response(
        500,
        '{"message":"An error has occurred.","exceptionMessage":"bad secret-3f9a7c1e5b2d4a6f"}',
        kind="entity",
        secrets=[CLIENT_SECRET],
    )

    assert CLIENT_SECRET not in str(error) and "••••" in str(error)


@pytest.mark.parametrize(
    ("pasted", "expected"),
    [
        ("https://erp.example.com/entity/Default/24.200.001/", ("https://erp.example.com", True)),
        ("https://host/AcumaticaERP/entity/auth/login", ("https://host/AcumaticaERP", True)),
        ("https://host/AcumaticaERP/identity/connect/token", ("https://host/AcumaticaERP", True)),
        ("https://host/AcumaticaERP/Main?ScreenId=IN202500", ("https://host/AcumaticaERP", True)),
        ("https://host/AcumaticaERP/", ("https://host/AcumaticaERP", False)),
        (" https://erp.example.com ", ("https://erp.example.com", False)),
    ],
)
def test_normalize_instance_url(pasted, expected):
    assert normalize_instance_url(pasted) == expected


@pytest.mark.parametrize(
    ("client_id", "valid"),
    [
        ("9B6B0D52-3C4A-4E0B-8F0D-2A1C5E7B9D31@MyStore", True),
        ("9b6b0d52-3c4a-4e0b-8f0d-2a1c5e7b9d31@My Store", True),
        ("9B6B0D52-3C4A-4E0B-8F0D-2A1C5E7B9D31", False),
        ("9B6B0D52-3C4A-4E0B-8F0D-2A1C5E7B9D31@", False),
        ("not-a-guid@MyStore", False),
        ("", False),
    ],
)
def test_client_id_is_a_guid_at_a_tenant(client_id, valid):
    assert valid_client_id(client_id) is valid


# --- OAuth 2.0 ------------------------------------------------------------------------------


def test_authorization_code_flow_gets_tokens_and_reads_with_a_bearer_token(
    acumatica, oauth_settings
):
    acumatica.register_redirect_uri(CALLBACK)
    store = TokenStore()
    client = AcumaticaClient(oauth_settings, on_tokens=store)

    url = client.authorization_url(CALLBACK, state="state-123")
    assert url.startswith(f"{client.instance_url}/identity/connect/authorize?response_type=code")
    assert "scope=openid%20api%20offline_access" in url
    redirect = requests.get(url, allow_redirects=False, timeout=5)
    assert redirect.status_code == 302
    location = urlsplit(redirect.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == CALLBACK
    query = parse_qs(location.query)
    assert query["state"] == ["state-123"]

    tokens = client.exchange_code(query["code"][0], CALLBACK)
    report = client.test_connection()

    assert store.saved == [(tokens.access_token, tokens.refresh_token, tokens.expires_at)]
    assert tokens.refresh_token and tokens.token_type == "Bearer"
    assert report.stock_item["InventoryID"] == "AACOMPUT01"
    assert acumatica.count("/entity/auth/login") == 0
    assert acumatica.calls("/StockItem")[0].headers["Authorization"] == "Bearer <redacted>"
    with pytest.raises(AcumaticaOAuthError) as caught:
        client.exchange_code(query["code"][0], CALLBACK)  # a code is used once
    assert caught.value.error_code == "invalid_grant"


def test_password_grant_when_there_is_no_token_yet(acumatica, oauth_settings):
    store = TokenStore()
    settings = oauth_settings
    settings.username, settings.password = "admin", PASSWORD
    client = AcumaticaClient(settings, on_tokens=store)

    client.first_stock_item()
    client.first_stock_item()

    token_calls = acumatica.calls("/identity/connect/token")
    assert [call.json_body["grant_type"] for call in token_calls] == ["password"]
    assert token_calls[0].json_body["password"] == "<redacted>"
    assert len(store.saved) == 1


def test_wrong_client_secret_is_an_oauth_error_without_the_secret(acumatica, oauth_settings):
    oauth_settings.client_secret = "not-the-secret-000"
    oauth_settings.username, oauth_settings.password = "admin", PASSWORD
    client = AcumaticaClient(oauth_settings)

    with pytest.raises(AcumaticaOAuthError) as caught:
        client.first_stock_item()

    assert caught.value.error_code == "invalid_client"
    assert "Connected Applications form (SM303010)" in str(caught.value)
    assert "not-the-secret-000" not in str(caught.value)


def test_refreshes_before_expiry_and_the_old_refresh_token_is_refused(acumatica, oauth_settings):
    now = [1_750_000_000.0]
    store = TokenStore()
    oauth_settings.username, oauth_settings.password = "admin", PASSWORD
    client = AcumaticaClient(oauth_settings, on_tokens=store, clock=lambda: now[0])
    first = client.password_grant()

    now[0] += 3600 - 59  # inside the 60 s margin
    client.first_stock_item()

    token_calls = acumatica.calls("/identity/connect/token")
    assert [call.json_body["grant_type"] for call in token_calls] == ["password", "refresh_token"]
    newest = store.saved[-1]
    assert newest[1] != first.refresh_token and client.tokens.refresh_token == newest[1]
    stale = AcumaticaClient(
        oauth_settings, tokens=OAuthTokens(first.access_token, first.refresh_token)
    )
    with pytest.raises(AcumaticaOAuthError) as caught:
        stale.refresh()
    assert caught.value.error_code == "invalid_grant"
    assert "replaced by a newer one" in str(caught.value)


def test_refreshes_once_on_a_401_and_retries(acumatica, oauth_settings):
    oauth_settings.username, oauth_settings.password = "admin", PASSWORD
    client = AcumaticaClient(oauth_settings)
    client.password_grant()
    acumatica.revoke_access_tokens()

    item = client.first_stock_item()

    assert unwrap(item)["InventoryID"] == "AACOMPUT01"
    assert [entry.status for entry in acumatica.calls("/StockItem")] == [401, 200]
    grants = [call.json_body["grant_type"] for call in acumatica.calls("/connect/token")]
    assert grants == ["password", "refresh_token"]


def test_without_any_token_or_password_oauth_asks_to_authorize(oauth_settings):
    client = AcumaticaClient(oauth_settings)

    with pytest.raises(AcumaticaOAuthError) as caught:
        client.first_stock_item()

    assert "authorize it on the Acumatica Connection screen" in str(caught.value)


# --- reads --------------------------------------------------------------------------------


def test_pages_with_top_and_skip_until_a_short_page(acumatica, client):
    for number in range(3):
        acumatica.add_item(f"ITEM{number}", f"Item {number}", 1.0)  # 7 items in all

    pages = list(client.iterate_pages("StockItem", page_size=3))

    assert [len(page) for page in pages] == [3, 3, 1]
    reads = [entry.path.split("?")[1] for entry in acumatica.calls("/StockItem")]
    assert reads == ["$top=3&$skip=0", "$top=3&$skip=3", "$top=3&$skip=6"]
    assert acumatica.count("/entity/auth/login") == 1  # one session for the whole read


def test_paging_stops_on_an_empty_page_after_full_ones(acumatica, client):
    acumatica.add_item("ITEM0")
    acumatica.add_item("ITEM1")  # 6 items

    pages = list(client.iterate_pages("StockItem", page_size=3))

    assert [len(page) for page in pages] == [3, 3]
    assert acumatica.count("/StockItem") == 3


def test_filter_by_inventory_id_with_warehouse_details(client):
    records = unwrap(
        client.get_entities(
            "StockItem", filter="InventoryID eq 'AALEGO500'", expand="WarehouseDetails"
        )
    )

    assert [record["InventoryID"] for record in records] == ["AALEGO500"]
    details = {row["WarehouseID"]: row["QtyOnHand"] for row in records[0]["WarehouseDetails"]}
    assert details == {"MAIN": 1999, "RETAIL": 40}


@pytest.mark.parametrize(
    ("moment", "zone", "offset", "expected"),
    [
        # Europe/Athens in summer: UTC+3.
        ("2025-06-17T07:31:28.402123+00:00", "Europe/Athens", 0, "2025-06-17T10:31:28.402+03:00"),
        # New York on the morning DST began (02:00 EST → 03:00 EDT, 07:00 UTC).
        ("2025-03-09T07:30:00+00:00", "America/New_York", 0, "2025-03-09T03:30:00.000-04:00"),
        # …and one hour of time offset takes the moment back across the change.
        ("2025-03-09T07:30:00+00:00", "America/New_York", 3600, "2025-03-09T01:30:00.000-05:00"),
        # Autumn: 01:30 happens twice in New York; the offset tells which.
        ("2025-11-02T06:30:00+00:00", "America/New_York", 0, "2025-11-02T01:30:00.000-05:00"),
        ("2025-11-02T06:30:00+00:00", "America/New_York", 3600, "2025-11-02T01:30:00.000-04:00"),
        # An aware moment in another zone is the same instant.
        ("2025-01-15T12:00:00+01:00", "UTC", 300, "2025-01-15T10:55:00.000+00:00"),
    ],
)
def test_modified_since_filter_writes_the_instance_zone_after_the_offset(
    moment, zone, offset, expected
):
    text = modified_since_filter(
        "LastModifiedDateTime", datetime.fromisoformat(moment), zone, offset
    )

    assert text == f"LastModifiedDateTime gt datetimeoffset'{expected}'"


def test_modified_since_filter_for_odata_and_naive_moments():
    moment = datetime(2025, 6, 17, 7, 31, 28, tzinfo=UTC)

    assert (
        modified_since_filter("LastModifiedDateTime", moment, "Europe/Athens", odata=True)
        == "LastModifiedDateTime gt 2025-06-17T10:31:28.000+03:00"
    )
    with pytest.raises(ValueError, match="aware"):
        modified_since_filter("LastModifiedDateTime", datetime(2025, 6, 17), "UTC")
    with pytest.raises(ValueError, match="IANA"):
        modified_since_filter("LastModifiedDateTime", moment, "Mars/Olympus")


def test_modified_since_filter_reaches_acumatica_with_the_plus_encoded(acumatica, client):
    time.sleep(0.005)  # the catalog was created earlier than the cutoff's millisecond
    cutoff = datetime.now(UTC)
    acumatica.change_price("AAPOWERAID", 3.0)

    records = unwrap(
        client.get_entities(
            "StockItem",
            filter=modified_since_filter("LastModifiedDateTime", cutoff, "Europe/Athens", 0),
        )
    )

    assert [record["InventoryID"] for record in records] == ["AAPOWERAID"]
    sent = acumatica.calls("/StockItem")[0].path
    assert "%2B03:00" in sent or "%2B02:00" in sent
    assert "+" not in sent


def test_odata_inquiry_rows_with_basic_auth(acumatica, client):
    client.import_project("MagentoConnector", "Connector inquiries", CONNECTOR_PROJECT)
    client.publish(["MagentoConnector"], poll_interval=0)
    acumatica.reset_log()

    rows = client.odata_gi(
        "MC-Inventory", filter="InventoryID eq 'AALEGO500'", orderby="Warehouse desc"
    )

    assert rows == [
        {
            "InventoryID": "AALEGO500",
            "Warehouse": "RETAIL",
            "QtyAvailable": 40.0,
            "QtyOnHand": 40.0,
            "LastModifiedDateTime": rows[0]["LastModifiedDateTime"],
        },
        {
            "InventoryID": "AALEGO500",
            "Warehouse": "MAIN",
            "QtyAvailable": 1999.0,
            "QtyOnHand": 1999.0,
            "LastModifiedDateTime": rows[1]["LastModifiedDateTime"],
        },
    ]
    (call,) = acumatica.requests
    assert call.path.startswith("/t/MyStore/api/odata/gi/MC-Inventory?$filter=")
    assert call.headers["Authorization"] == "Basic <redacted>"
    prices = client.odata_gi("MC-Prices", top=2, skip=1)
    assert [row["InventoryID"] for row in prices] == ["AALEGO500", "AAPOWERAID"]


def test_odata_catch_up_by_last_modified_over_pages(acumatica, client):
    client.import_project("MagentoConnector", "Connector inquiries", CONNECTOR_PROJECT)
    client.publish(["MagentoConnector"], poll_interval=0)
    time.sleep(0.005)
    cutoff = datetime.now(UTC)
    acumatica.change_stock("AALEGO500", "MAIN", 5)
    acumatica.change_stock("AACOMPUT01", "WHOLESALE", 7)
    acumatica.change_stock("CONGOLFCL1", "RETAIL", 1)

    since = modified_since_filter("LastModifiedDateTime", cutoff, "America/New_York", odata=True)
    pages = list(client.iterate_gi_pages("MC-Inventory", 2, filter=since, orderby="InventoryID"))

    assert [[(row["InventoryID"], row["QtyOnHand"]) for row in page] for page in pages] == [
        [("AACOMPUT01", 7), ("AALEGO500", 5)],
        [("CONGOLFCL1", 1)],
    ]


def test_odata_with_a_bearer_token(acumatica, client, oauth_settings):
    client.import_project("MagentoConnector", "Connector inquiries", CONNECTOR_PROJECT)
    client.publish(["MagentoConnector"], poll_interval=0)
    oauth_settings.username, oauth_settings.password = "admin", PASSWORD
    oauth = AcumaticaClient(oauth_settings)

    rows = oauth.odata_gi("MC-Prices", filter="InventoryID eq 'AACOMPUT01'")

    assert rows[0]["DefaultPrice"] == 999.0
    assert acumatica.calls("/gi/MC-Prices")[0].headers["Authorization"] == "Bearer <redacted>"


def test_odata_unknown_inquiry_says_to_run_initialize(client):
    with pytest.raises(AcumaticaInquiryNotFound) as caught:
        client.odata_gi("MC-Inventory")

    assert "Run Initialize" in str(caught.value)


# --- the Customization API -------------------------------------------------------------------


def test_import_and_publish_poll_until_completed(acumatica, client):
    progress = []

    log = client.import_project("MagentoConnector", "Connector inquiries", CONNECTOR_PROJECT)
    status = client.publish(["MagentoConnector"], poll_interval=0, on_progress=progress.append)

    assert "has been imported" in log[0].message
    assert status.is_completed and not status.is_failed
    assert [entry.is_completed for entry in progress] == [False, False, True]
    assert status.log[-1].message == "Website updated."
    assert client.get_published() == ["MagentoConnector"]
    begin = acumatica.calls("/CustomizationApi/publishBegin")[0].json_body
    assert begin == {
        "projectNames": ["MagentoConnector"],
        "tenantMode": "Current",
        "isMergeWithExistingPackages": True,
        "isOnlyValidation": False,
        "isOnlyDbUpdates": False,
        "isReplayPreviouslyExecutedScripts": False,
    }
    imported = acumatica.calls("/CustomizationApi/import")[0].json_body
    assert imported["projectLevel"] == 0 and imported["isReplaceIfExists"] is True
    assert acumatica.published_inquiries() == ["MC-Inventory", "MC-Prices"]
    assert acumatica.seats_in_use == 0


def test_a_failed_publish_raises_with_its_log(acumatica, client):
    client.import_project("MagentoConnector", "Connector inquiries", CONNECTOR_PROJECT)
    acumatica.fail_next_publish(["error CS0103: The name 'x' does not exist"])

    with pytest.raises(AcumaticaCustomizationError) as caught:
        client.publish(["MagentoConnector"], poll_interval=0)

    assert "Publishing MagentoConnector failed" in str(caught.value)
    assert "CS0103" in str(caught.value)
    assert caught.value.log[-1].log_type == "error"
    assert client.get_published() == []


def test_an_import_the_api_refuses_raises_with_its_log(client):
    with pytest.raises(AcumaticaCustomizationError) as caught:
        client.import_project("MagentoConnector", "broken", b"not a zip file")

    assert "not a valid customization project" in str(caught.value)


def test_removing_a_project_imports_it_empty(acumatica, client):
    client.import_project("MagentoConnector", "Connector inquiries", CONNECTOR_PROJECT)
    client.publish(["MagentoConnector"], poll_interval=0)

    client.remove_project("MagentoConnector")

    assert acumatica.calls("/CustomizationApi/import")[-1].json_body["projectContentBase64"]
    assert client.get_published() == []
    assert "MagentoConnector" not in acumatica.projects


def test_customization_needs_the_customizer_role(acumatica, acumatica_url):
    acumatica.add_user("clerk", "clerk-password-1")
    client = AcumaticaClient(
        make_settings(acumatica_url, username="clerk", password="clerk-password-1")
    )

    with pytest.raises(AcumaticaAuthError) as caught:
        client.get_published()

    assert "Customizer role" in str(caught.value)
    assert acumatica.seats_in_use == 0


def test_customization_signs_in_with_cookies_even_for_oauth(acumatica, oauth_settings):
    oauth_settings.username, oauth_settings.password = "admin", PASSWORD
    client = AcumaticaClient(oauth_settings)

    assert client.get_published() == []
    assert paths(acumatica) == [
        "POST /entity/auth/login",
        "POST /CustomizationApi/getPublished",
        "POST /entity/auth/logout",
    ]


def test_every_error_is_an_acumatica_error_with_a_sentence(client, acumatica):
    acumatica.fail_next(1, "503")

    with pytest.raises(AcumaticaError) as caught:
        client.test_connection()

    assert isinstance(caught.value, AcumaticaServerError)
    assert "503 Service Unavailable" in str(caught.value)


# --- seats: the connector's own cap on open sessions ------------------------------------------


def test_seats_make_a_second_session_wait_instead_of_hitting_the_login_limit(
    acumatica, acumatica_url, tmp_path
):
    seats = FileLockSlots(tmp_path / "seats", 1)
    first = AcumaticaClient(make_settings(acumatica_url), seats=seats)
    second = AcumaticaClient(make_settings(acumatica_url), seats=seats, seat_timeout=10)
    acumatica.latency_ms = 20
    reports = []

    with first.session() as api:
        waiting = threading.Thread(target=lambda: reports.append(second.test_connection()))
        waiting.start()
        for _ in range(5):
            api.first_stock_item()
        assert acumatica.count("/entity/auth/login") == 1  # the second is still waiting
    waiting.join(timeout=10)

    assert len(reports) == 1
    assert [entry.status for entry in acumatica.calls("/entity/auth/login")] == [204, 204]


def test_a_seat_wait_timeout_is_busy_and_signs_in_nowhere(acumatica, acumatica_url, tmp_path):
    seats = FileLockSlots(tmp_path / "seats", 1)
    client = AcumaticaClient(make_settings(acumatica_url), seats=seats, seat_timeout=0.1)

    with seats.acquire(1):
        with pytest.raises(AcumaticaBusy):
            client.test_connection()

    assert acumatica.requests == []
