"""The Acumatica simulator answers as Acumatica does, and sends push notifications like it."""

from __future__ import annotations

import base64
import io
import json
import random
import threading
import zipfile
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

import sandbox.acumatica as simulator_module
from connector.acumatica import ticks_to_datetime
from sandbox.acumatica import (
    DEFAULT_PASSWORD,
    MAX_DELIVERY_ATTEMPTS,
    AcumaticaSimulator,
    parse_project_xml,
)
from sandbox.server import serve

INVENTORY_DESIGN = "11111111-1111-1111-1111-111111111111"
PRICES_DESIGN = "22222222-2222-2222-2222-222222222222"
RECEIVER = "http://connector.test/acumatica/push/default/"
QUIET_RECEIVER = "http://connector.test/acumatica/push/paused/"
HEADER = "X-Connector-Secret"
SECRET = "push-secret-8d2f0a"


class Clock:
    def __init__(self) -> None:
        self.now = 1_750_000_000.0

    def __call__(self) -> float:
        return self.now


class Receiver:
    """The `post` callable: records each POST and answers the next queued status (200 after)."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.posts: list[tuple[str, dict, dict[str, str]]] = []

    def __call__(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        self.posts.append((url, json.loads(body), headers))
        return self.statuses.pop(0) if self.statuses else 200


def inquiry_item(name: str, design_id: str, table: str, exposed: str = "1") -> str:
    return (
        "<GenericInquiryScreen><data-set><data><GIDesign>"
        f'<row DesignID="{design_id}" Name="{name}" ExposeViaOData="{exposed}">'
        f'<GITable Alias="t" Name="{table}" />'
        '<GIResult LineNbr="1" Field="inventoryCD" /></row>'
        "</GIDesign></data></data-set></GenericInquiryScreen>"
    )


def push_item(name: str, address: str, design_id: str, active: str = "1") -> str:
    return (
        "<PushNotification><data-set>"
        '<relations format-version="3" main-table="PushNotificationsHook">'
        '<link from="PushNotificationsSource (HookId)" to="PushNotificationsHook (HookId)" />'
        "</relations><data><PushNotificationsHook>"
        f'<row HookId="{name}-hook" Name="{name}" Type="HTTP" Address="{address}" '
        f'HeaderName="{HEADER}" HeaderValue="{SECRET}" Active="{active}">'
        f'<PushNotificationsSource LineNbr="1" DesignID="{design_id}" IsActive="1" />'
        "</row></PushNotificationsHook></data></data-set></PushNotification>"
    )


def project_zip(*items: str) -> bytes:
    xml = '<Customization level="0" description="Connector">' + "".join(items) + "</Customization>"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as package:
        package.writestr("project.xml", xml)
    return buffer.getvalue()


CONNECTOR_PROJECT = project_zip(
    inquiry_item("MC-Inventory", INVENTORY_DESIGN, "PX.Objects.IN.INSiteStatus"),
    inquiry_item("MC-Prices", PRICES_DESIGN, "PX.Objects.IN.InventoryItem"),
    push_item("MC-Inventory", RECEIVER, INVENTORY_DESIGN),
    push_item("MC-Inventory-paused", QUIET_RECEIVER, INVENTORY_DESIGN, active="0"),
    push_item("MC-Prices", RECEIVER, PRICES_DESIGN),
)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def receiver() -> Receiver:
    return Receiver()


@pytest.fixture
def acumatica(clock, receiver) -> AcumaticaSimulator:
    return AcumaticaSimulator(clock=clock, post=receiver)


def call(simulator, method, path, body=None, headers=None, raw: bytes | None = None):
    headers = {"Host": "acumatica.test", **(headers or {})}
    if raw is None:
        raw = json.dumps(body).encode() if body is not None else b""
    status, answer_headers, answer = simulator.handle(method, path, headers, raw)
    is_json = answer_headers.get("Content-Type", "").startswith("application/json")
    return status, (json.loads(answer) if is_json and answer else answer.decode()), answer_headers


def login(simulator, **overrides) -> tuple[int, object, dict[str, str]]:
    credentials = {"name": "admin", "password": DEFAULT_PASSWORD, "tenant": "MyStore"}
    credentials.update(overrides)
    status, body, headers = call(simulator, "POST", "/entity/auth/login", credentials)
    set_cookies = [value for name, value in headers.items() if name == "Set-Cookie"]
    cookies = "; ".join(value.split(";", 1)[0] for value in set_cookies)
    return status, body, {"Cookie": cookies}


def publish(simulator, content: bytes = CONNECTOR_PROJECT) -> None:
    _, _, session = login(simulator)
    imported = {
        "projectName": "MagentoConnector",
        "projectDescription": "Connector inquiries and push notifications",
        "projectLevel": 0,
        "isReplaceIfExists": True,
        "projectContentBase64": base64.b64encode(content).decode(),
    }
    assert call(simulator, "POST", "/CustomizationApi/import", imported, session)[0] == 200
    begin = {"projectNames": ["MagentoConnector"], "tenantMode": "Current"}
    begin["isMergeWithExistingPackages"] = True
    call(simulator, "POST", "/CustomizationApi/publishBegin", begin, session)
    while True:
        _, status, _ = call(simulator, "POST", "/CustomizationApi/publishEnd", {}, session)
        if status["isCompleted"] or status["isFailed"]:
            return


# --- seats, sessions, sign-in errors ----------------------------------------------------------


def test_login_sets_the_session_cookies_and_takes_a_seat(acumatica):
    status, body, session = login(acumatica)

    assert (status, body) == (204, "")
    names = [cookie.split("=", 1)[0] for cookie in session["Cookie"].split("; ")]
    assert names == ["ASP.NET_SessionId", "UserBranch", "Locale", ".ASPXAUTH", "requestid"]
    assert acumatica.seats_in_use == 1
    assert call(acumatica, "GET", "/entity/Default/24.200.001/StockItem", headers=session)[0] == 200


def test_a_request_without_every_session_cookie_is_refused(acumatica):
    _, _, session = login(acumatica)
    only_auth = "; ".join(c for c in session["Cookie"].split("; ") if c.startswith(".ASPXAUTH"))

    status, body, _ = call(
        acumatica, "GET", "/entity/Default/24.200.001/StockItem", headers={"Cookie": only_auth}
    )

    assert (status, body) == (401, {"message": "Authorization has been denied for this request."})


def test_one_seat_refuses_a_second_login_until_the_first_signs_out(acumatica):
    _, _, first = login(acumatica)

    status, body, _ = login(acumatica)
    assert status == simulator_module.LOGIN_LIMIT_STATUS == 500
    assert body["exceptionMessage"] == "API Login Limit"
    assert body["message"] == "An error has occurred."

    assert call(acumatica, "POST", "/entity/auth/logout", headers=first)[0] == 204
    assert acumatica.seats_in_use == 0
    assert login(acumatica)[0] == 204


def test_seats_are_configurable(clock, receiver):
    acumatica = AcumaticaSimulator(api_seats=2, clock=clock, post=receiver)

    assert [login(acumatica)[0] for _ in range(3)] == [204, 204, 500]


def test_an_idle_session_frees_its_seat_after_the_idle_timeout(acumatica, clock):
    _, _, stale = login(acumatica)
    clock.now += 599
    assert acumatica.seats_in_use == 1
    assert login(acumatica)[0] == 500

    clock.now += 1

    assert acumatica.seats_in_use == 0
    status, _, fresh = login(acumatica)
    assert status == 204
    stock_items = "/entity/Default/24.200.001/StockItem"
    assert call(acumatica, "GET", stock_items, headers=stale)[0] == 401
    assert call(acumatica, "GET", stock_items, headers=fresh)[0] == 200


def test_a_request_keeps_the_session_from_going_idle(acumatica, clock):
    _, _, session = login(acumatica)
    for _ in range(3):
        clock.now += 500
        assert call(acumatica, "GET", "/entity", headers=session)[0] == 200
        assert call(acumatica, "GET", "/entity/Default/24.200.001/StockItem", headers=session)[0]

    assert acumatica.seats_in_use == 1


@pytest.mark.parametrize(
    ("overrides", "exception_type", "message"),
    [
        ({"password": "wrong"}, "PX.Data.PXException", "Invalid credentials. Please try again."),
        ({"name": "nobody"}, "PX.Data.PXException", "Invalid credentials. Please try again."),
        (
            {"tenant": "Nowhere"},
            "PX.Data.PXUndefinedCompanyException",
            "A proper company ID cannot be determined for the request.",
        ),
    ],
)
def test_wrong_credentials_and_unknown_tenant(acumatica, overrides, exception_type, message):
    status, body, _ = login(acumatica, **overrides)

    assert status == 500
    assert (body["exceptionType"], body["exceptionMessage"]) == (exception_type, message)
    assert acumatica.seats_in_use == 0


# --- the contract-based API --------------------------------------------------------------------


def test_entity_root_lists_version_and_endpoints(acumatica):
    status, body, _ = call(acumatica, "GET", "/entity")

    assert status == 200
    assert body["version"]["acumaticaBuildVersion"] == "24.200.0198"
    assert {"name": "Default", "version": "24.200.001"}.items() <= body["endpoints"][2].items()
    assert body["endpoints"][2]["href"] == "http://acumatica.test/entity/Default/24.200.001/"


def test_unknown_endpoint_version_answers_404(acumatica):
    _, _, session = login(acumatica)

    status, body, _ = call(acumatica, "GET", "/entity/Default/9.9/StockItem", headers=session)

    assert status == 404
    assert body["message"].startswith("No HTTP resource was found that matches the request URI")


def test_stock_items_are_wrapped_filtered_paged_and_expanded(acumatica):
    _, _, session = login(acumatica)
    path = "/entity/Default/24.200.001/StockItem?" + urlencode(
        {"$filter": "InventoryID eq 'aalego500'", "$expand": "WarehouseDetails"}
    )

    _, (record,), _ = call(acumatica, "GET", path, headers=session)
    _, page, _ = call(
        acumatica, "GET", "/entity/Default/24.200.001/StockItem?$top=2&$skip=1", headers=session
    )

    assert record["InventoryID"] == {"value": "AALEGO500"}
    assert record["DefaultPrice"] == {"value": 49.99}
    assert [detail["WarehouseID"]["value"] for detail in record["WarehouseDetails"]] == [
        "MAIN",
        "RETAIL",
    ]
    assert [item["InventoryID"]["value"] for item in page] == ["AALEGO500", "AAPOWERAID"]
    assert [item["rowNumber"] for item in page] == [2, 3]


def test_last_modified_filter_needs_the_plus_encoded(clock, receiver):
    acumatica = AcumaticaSimulator(clock=clock, post=receiver, time_zone="Europe/Athens")
    _, _, session = login(acumatica)
    clock.now += 60
    acumatica.change_price("AAPOWERAID", 3.1)
    since = datetime.fromtimestamp(clock.now - 30, UTC).astimezone(acumatica.zone)
    condition = f"LastModifiedDateTime gt datetimeoffset'{since.isoformat()}'"
    encoded = urlencode({"$filter": condition})  # '+' as %2B
    stock_items = "/entity/Default/24.200.001/StockItem?"

    _, records, _ = call(acumatica, "GET", stock_items + encoded, headers=session)
    status, refused, _ = call(
        acumatica, "GET", stock_items + encoded.replace("%2B", "+"), headers=session
    )

    assert "%2B03%3A00" in encoded
    assert [record["InventoryID"]["value"] for record in records] == ["AAPOWERAID"]
    assert status == 400
    assert "unencoded arrives as a space" in refused["message"]


def test_stock_changes_do_not_touch_the_stock_items_last_modified(acumatica, clock):
    _, _, session = login(acumatica)
    path = "/entity/Default/24.200.001/StockItem?$filter=InventoryID%20eq%20'AALEGO500'"
    before = call(acumatica, "GET", path, headers=session)[1][0]["LastModifiedDateTime"]

    clock.now += 60
    acumatica.change_stock("AALEGO500", "MAIN", 10)

    assert call(acumatica, "GET", path, headers=session)[1][0]["LastModifiedDateTime"] == before


# --- Customization API and project.xml --------------------------------------------------------


def test_publish_completes_after_the_configured_polls_and_lists_the_project(acumatica):
    _, _, session = login(acumatica)
    imported = {
        "projectName": "MagentoConnector",
        "projectContentBase64": base64.b64encode(CONNECTOR_PROJECT).decode(),
    }
    call(acumatica, "POST", "/CustomizationApi/import", imported, session)
    begin = {"projectNames": ["MagentoConnector"], "isMergeWithExistingPackages": True}

    _, started, _ = call(acumatica, "POST", "/CustomizationApi/publishBegin", begin, session)
    polls = [
        call(acumatica, "POST", "/CustomizationApi/publishEnd", {}, session)[1] for _ in range(3)
    ]

    assert started["log"][0]["message"] == "Publishing has started."
    assert [(p["isCompleted"], p["isFailed"]) for p in polls] == [
        (False, False),
        (False, False),
        (True, False),
    ]
    assert set(polls[-1]["log"][-1]) == {"timestamp", "logType", "message"}
    # The website restarted: the session is gone; a new one sees the project published.
    assert call(acumatica, "POST", "/CustomizationApi/getPublished", {}, session)[0] == 401
    _, _, session = login(acumatica)
    _, published, _ = call(acumatica, "POST", "/CustomizationApi/getPublished", {}, session)
    assert published["projects"] == [{"name": "MagentoConnector"}]


def test_failed_publish_reports_is_failed_with_the_log(acumatica):
    acumatica.fail_next_publish(["Validation failed: MC-Inventory has no results."])

    publish(acumatica)

    assert acumatica.published == []
    assert acumatica.published_push_notifications() == []


def test_getpublished_without_projects_has_only_a_log(acumatica):
    _, _, session = login(acumatica)

    _, body, _ = call(acumatica, "POST", "/CustomizationApi/getPublished", {}, session)

    assert "projects" not in body
    assert body["log"][0]["message"] == "The system does not contain published projects"


def test_importing_no_content_removes_the_project(acumatica):
    publish(acumatica)
    _, _, session = login(acumatica)

    empty = {"projectName": "MagentoConnector", "projectContentBase64": ""}
    _, body, _ = call(acumatica, "POST", "/CustomizationApi/import", empty, session)

    assert body["log"][0]["message"] == "The project has been deleted."
    assert acumatica.published == [] and acumatica.published_inquiries() == []


def test_project_xml_gives_inquiries_and_push_notifications(acumatica):
    publish(acumatica)

    assert acumatica.published_inquiries() == ["MC-Inventory", "MC-Prices"]
    assert acumatica.published_push_notifications() == [
        {
            "name": "MC-Inventory",
            "address": RECEIVER,
            "header_name": HEADER,
            "header_value": SECRET,
            "active": True,
            "inquiry": "MC-Inventory",
        },
        {
            "name": "MC-Inventory-paused",
            "address": QUIET_RECEIVER,
            "header_name": HEADER,
            "header_value": SECRET,
            "active": False,
            "inquiry": "MC-Inventory",
        },
        {
            "name": "MC-Prices",
            "address": RECEIVER,
            "header_name": HEADER,
            "header_value": SECRET,
            "active": True,
            "inquiry": "MC-Prices",
        },
    ]


def test_project_xml_parsing_is_tolerant():
    xml = (
        b"<Customization><Unknown><x/></Unknown>"
        b"<GenericInquiryScreen><data-set><data><GIDesign>"
        b'<row designid="ABC" name="Stock levels" /></GIDesign></data></data-set>'
        b"</GenericInquiryScreen>"
        b'<PushNotification Name="Direct" Address="https://x.test/" Inquiry="Stock levels" '
        b'IsActive="true" /></Customization>'
    )

    parsed = parse_project_xml(xml)

    assert [(i.name, i.kind) for i in parsed.inquiries] == [("Stock levels", "inventory")]
    assert [(p.name, p.inquiry, p.active) for p in parsed.push_notifications] == [
        ("Direct", "Stock levels", True)
    ]


# --- the push-notification sender --------------------------------------------------------------


def test_stock_change_posts_acumaticas_json_to_the_active_push_notification(
    acumatica, receiver, clock
):
    publish(acumatica)
    clock.now += 120

    (delivery,) = acumatica.change_stock("AALEGO500", "MAIN", 1976, allocated=0)

    ((url, body, headers),) = receiver.posts
    assert url == RECEIVER
    assert headers == {"Content-Type": "application/json", HEADER: SECRET}
    assert set(body) == {
        "Inserted",
        "Deleted",
        "Query",
        "CompanyId",
        "Id",
        "TimeStamp",
        "AdditionalInfo",
    }
    assert body["Query"] == "MC-Inventory" and body["CompanyId"] == "MyStore"
    assert body["Inserted"] == [
        {
            "InventoryID": "AALEGO500",
            "Warehouse": "MAIN ",
            "QtyAvailable": 1976,
            "QtyOnHand": 1976,
            "LastModifiedDateTime": body["Inserted"][0]["LastModifiedDateTime"],
        }
    ]
    assert body["Deleted"][0]["InventoryID"] == "AALEGO500 "
    assert body["Deleted"][0]["QtyOnHand"] == 1999
    assert "+" not in body["Inserted"][0]["LastModifiedDateTime"]  # local time, no offset
    assert abs(ticks_to_datetime(body["TimeStamp"]).timestamp() - clock.now) < 1
    assert set(body["AdditionalInfo"]) == {"PXPerformanceInfoStartTime"}
    assert delivery.delivered and delivery.attempts == 1
    assert not any(url == QUIET_RECEIVER for url, _, _ in receiver.posts)


def test_price_change_goes_to_the_prices_push_notification(acumatica, receiver):
    publish(acumatica)

    acumatica.change_price("AACOMPUT01", 949.0)

    ((url, body, _),) = receiver.posts
    assert body["Query"] == "MC-Prices"
    assert body["Inserted"][0]["DefaultPrice"] == 949
    assert body["Deleted"][0]["DefaultPrice"] == 999
    assert acumatica.price_of("AACOMPUT01") == 949.0


def test_nothing_is_sent_before_a_push_notification_is_published(acumatica, receiver):
    acumatica.change_stock("AALEGO500", "MAIN", 1)

    assert receiver.posts == []
    assert acumatica.stock_of("AALEGO500", "MAIN") == 1


def test_failed_posts_are_retried_up_to_five_attempts(acumatica, receiver):
    publish(acumatica)
    receiver.statuses = [500, 503, 500, 401]

    (delivery,) = acumatica.change_stock("AALEGO500", "MAIN", 5)

    assert delivery.delivered and delivery.attempts == 5
    assert len(receiver.posts) == 5
    assert len({post[1]["Id"] for post in receiver.posts}) == 1  # the same notification again
    assert acumatica.failed_deliveries == []


def test_after_five_failed_attempts_the_notification_is_kept_as_failed(acumatica, receiver):
    publish(acumatica)
    receiver.statuses = [503] * MAX_DELIVERY_ATTEMPTS

    (delivery,) = acumatica.change_stock("AALEGO500", "MAIN", 5)

    assert not delivery.delivered and delivery.attempts == MAX_DELIVERY_ATTEMPTS
    assert acumatica.failed_deliveries == [delivery]
    assert delivery.error == "HTTP 503"

    acumatica.resend_failed()

    assert delivery.delivered and acumatica.failed_deliveries == []


def test_a_post_that_raises_counts_as_a_failed_attempt(clock):
    def unreachable(url, body, headers):
        raise ConnectionRefusedError("refused")

    acumatica = AcumaticaSimulator(clock=clock, post=unreachable)
    publish(acumatica)

    (delivery,) = acumatica.change_stock("AALEGO500", "MAIN", 5)

    assert delivery.attempts == 5 and delivery.status is None
    assert delivery.error == "ConnectionRefusedError: refused"
    assert acumatica.failed_deliveries == [delivery]


def test_simulated_changes_carry_growing_timestamps(acumatica, receiver):
    publish(acumatica)

    deliveries = acumatica.simulate_changes(30, random.Random(7))

    assert len(deliveries) == 30 == len(receiver.posts)
    stamps = [post[1]["TimeStamp"] for post in receiver.posts]
    assert stamps == sorted(stamps) and len(set(stamps)) == 30
    assert {post[1]["Query"] for post in receiver.posts} == {"MC-Inventory", "MC-Prices"}


def test_push_reaches_a_real_http_receiver_with_its_header(clock):
    got = []

    class Endpoint:
        def handle(self, method, path, headers, body):
            got.append((method, path, headers, json.loads(body)))
            return 200, {"Content-Type": "application/json"}, b"{}"

    with serve(Endpoint()) as url:
        project = project_zip(
            inquiry_item("MC-Prices", PRICES_DESIGN, "PX.Objects.IN.InventoryItem"),
            push_item("MC-Prices", f"{url}/acumatica/push/default/", PRICES_DESIGN),
        )
        acumatica = AcumaticaSimulator(clock=clock)
        publish(acumatica, project)
        acumatica.change_price("AAPOWERAID", 2.75)

    ((method, path, headers, body),) = got
    assert (method, path) == ("POST", "/acumatica/push/default/")
    assert headers[HEADER] == SECRET
    assert body["Inserted"][0]["DefaultPrice"] == 2.75


# --- OData --------------------------------------------------------------------------------------


def basic(user: str = "admin", password: str = DEFAULT_PASSWORD) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_odata_rows_follow_the_catalog(acumatica, clock):
    publish(acumatica)
    clock.now += 60
    acumatica.change_stock("AACOMPUT01", "MAIN", 11)
    since = datetime.fromtimestamp(clock.now - 1, UTC).isoformat()
    query = urlencode({"$filter": f"LastModifiedDateTime gt {since}", "$orderby": "InventoryID"})

    status, body, _ = call(
        acumatica, "GET", f"/t/MyStore/api/odata/gi/MC-Inventory?{query}", headers=basic()
    )

    assert status == 200
    assert body["@odata.context"].endswith("/t/MyStore/api/odata/gi/$metadata#MC-Inventory")
    assert [(row["InventoryID"], row["Warehouse"], row["QtyOnHand"]) for row in body["value"]] == [
        ("AACOMPUT01", "MAIN", 11.0)
    ]


def test_odata_refuses_wrong_credentials_and_unpublished_inquiries(acumatica):
    publish(acumatica)

    assert (
        call(acumatica, "GET", "/t/MyStore/api/odata/gi/MC-Prices", headers=basic("admin", "x"))[0]
        == 401
    )
    assert call(acumatica, "GET", "/t/MyStore/api/odata/gi/MC-Nothing", headers=basic())[0] == 404
    assert call(acumatica, "GET", "/t/Other/api/odata/gi/MC-Prices", headers=basic())[0] == 401


# --- OAuth ------------------------------------------------------------------------------------


def token(simulator, **form) -> tuple[int, dict]:
    form = {"client_id": simulator.client_id, "client_secret": simulator.client_secret, **form}
    status, body, _ = call(
        simulator, "POST", "/identity/connect/token", raw=urlencode(form).encode()
    )
    return status, body


def test_authorize_redirects_with_code_and_state_to_a_registered_uri(acumatica):
    acumatica.register_redirect_uri("https://connector.test/cb/")
    query = urlencode(
        {
            "response_type": "code",
            "client_id": acumatica.client_id,
            "redirect_uri": "https://connector.test/cb/",
            "scope": "openid api offline_access",
            "state": "s1",
        }
    )

    status, _, headers = call(acumatica, "GET", f"/identity/connect/authorize?{query}")
    refused = call(
        acumatica, "GET", "/identity/connect/authorize?" + query.replace("cb", "elsewhere")
    )

    assert status == 302
    location = urlsplit(headers["Location"])
    assert parse_qs(location.query)["state"] == ["s1"]
    code = parse_qs(location.query)["code"][0]
    assert refused[0] == 400 and "Invalid redirect_uri" in refused[1]
    ok, tokens = token(
        acumatica,
        grant_type="authorization_code",
        code=code,
        redirect_uri="https://connector.test/cb/",
    )
    assert ok == 200 and tokens["token_type"] == "Bearer" and tokens["expires_in"] == 3600


def test_authorize_with_a_sign_in_form(acumatica):
    acumatica.oauth_auto_approve = False
    params = {
        "response_type": "code",
        "client_id": acumatica.client_id,
        "redirect_uri": "https://connector.test/cb/",
        "scope": "api",
        "state": "s2",
    }

    status, page, _ = call(acumatica, "GET", "/identity/connect/authorize?" + urlencode(params))
    wrong = {**params, "username": "admin", "password": "nope"}
    retry = call(acumatica, "POST", "/identity/connect/authorize", raw=urlencode(wrong).encode())
    right = {**params, "username": "admin", "password": DEFAULT_PASSWORD}
    done = call(acumatica, "POST", "/identity/connect/authorize", raw=urlencode(right).encode())

    assert status == 200 and 'name="password"' in page
    assert retry[0] == 200 and "Invalid credentials" in retry[1]
    assert done[0] == 302 and "code=" in done[2]["Location"]


def test_refresh_tokens_rotate_and_an_old_one_is_refused(acumatica):
    _, first = token(
        acumatica,
        grant_type="password",
        username="admin",
        password=DEFAULT_PASSWORD,
        scope="api offline_access",
    )

    status, second = token(
        acumatica, grant_type="refresh_token", refresh_token=first["refresh_token"]
    )
    again = token(acumatica, grant_type="refresh_token", refresh_token=first["refresh_token"])

    assert status == 200 and second["refresh_token"] != first["refresh_token"]
    assert again == (400, {"error": "invalid_grant"})
    assert (
        token(acumatica, grant_type="refresh_token", refresh_token=second["refresh_token"])[0]
        == 200
    )


def test_access_tokens_expire_after_their_lifetime(acumatica, clock):
    acumatica.token_lifetime_seconds = 30
    _, tokens = token(
        acumatica, grant_type="password", username="admin", password=DEFAULT_PASSWORD, scope="api"
    )
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    stock_items = "/entity/Default/24.200.001/StockItem"

    assert call(acumatica, "GET", stock_items, headers=bearer)[0] == 200
    clock.now += 30
    assert call(acumatica, "GET", stock_items, headers=bearer)[0] == 401
    assert "refresh_token" not in tokens  # no offline_access, no refresh token


def test_wrong_client_secret_is_invalid_client(acumatica):
    assert token(acumatica, grant_type="password", client_secret="nope")[1] == {
        "error": "invalid_client"
    }


# --- faults and concurrency -----------------------------------------------------------------


def test_max_concurrent_seen_counts_overlapping_requests(acumatica):
    acumatica.latency_ms = 100
    threads = [threading.Thread(target=call, args=(acumatica, "GET", "/entity")) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert acumatica.max_concurrent_seen == 4
    acumatica.reset_log()
    call(acumatica, "GET", "/entity")
    assert acumatica.max_concurrent_seen == 1


def test_faults_then_normal_again(acumatica):
    acumatica.fail_next(2, "503")

    assert [call(acumatica, "GET", "/entity")[0] for _ in range(3)] == [503, 503, 200]


def test_the_request_log_hides_secrets(acumatica):
    login(acumatica)
    token(acumatica, grant_type="password", username="admin", password=DEFAULT_PASSWORD)

    logged = json.dumps([entry.json_body for entry in acumatica.requests])
    assert DEFAULT_PASSWORD not in logged and acumatica.client_secret not in logged
