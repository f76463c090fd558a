"""The Magento simulator answers as Magento does, logs what it got, and fails on request."""

from __future__ import annotations

import http.client
import json
import threading
import time

import pytest

from sandbox.magento import DropConnection, MagentoSimulator
from sandbox.server import serve

TOKEN = "simulator-token"
AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


@pytest.fixture
def magento() -> MagentoSimulator:
    simulator = MagentoSimulator(token=TOKEN)
    simulator.add_product("simple", price=10, sources={"default": 100})
    simulator.add_product("AALEGO500", price=49.99, sources={"default": 5, "west": 2})
    return simulator


def call(simulator, method, path, body=None, headers=AUTH):
    raw = json.dumps(body).encode() if body is not None else b""
    status, answer_headers, answer = simulator.handle(method, path, dict(headers), raw)
    is_json = answer_headers.get("Content-Type", "").startswith("application/json")
    return status, json.loads(answer) if is_json else answer.decode()


# --- routing and the token -----------------------------------------------------------------


def test_unknown_route_answers_no_route(magento):
    assert call(magento, "GET", "/rest/default/V1/nothing") == (
        404,
        {"message": "Request does not match any route.", "trace": None},
    )


def test_unknown_store_code_is_part_of_the_path_so_no_route(magento):
    status, body = call(magento, "GET", "/rest/nosuchstore/V1/modules")

    assert status == 404 and body["message"] == "Request does not match any route."


def test_rest_without_store_code_uses_the_default_store(magento):
    assert call(magento, "GET", "/rest/V1/modules")[0] == 200


def test_missing_or_wrong_token_is_refused_naming_the_resource(magento):
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        assert call(magento, "POST", "/rest/default/V1/products/base-prices", {}, headers) == (
            401,
            {
                "message": "The consumer isn't authorized to access %resources.",
                "parameters": {"resources": "Magento_Catalog::catalog"},
            },
        )


def test_bearer_disabled_refuses_even_the_right_token(magento):
    magento.bearer_disabled = True

    assert call(magento, "GET", "/rest/default/V1/modules")[0] == 401


def test_get_with_store_code_all_is_refused(magento):
    assert call(magento, "GET", "/rest/all/V1/store/storeConfigs") == (
        400,
        {"message": "Cannot perform GET operation with store code 'all'"},
    )


def test_store_configs_list_the_store_views_not_admin(magento):
    magento.add_store("fr", 2, website_id=1, base_currency_code="EUR")

    status, body = call(magento, "GET", "/rest/default/V1/store/storeConfigs")

    assert status == 200
    assert [(c["code"], c["id"], c["base_currency_code"]) for c in body] == [
        ("default", 1, "USD"),
        ("fr", 2, "EUR"),
    ]


def test_without_msi_the_inventory_routes_do_not_exist(magento):
    magento.msi = False

    status, _ = call(magento, "POST", "/rest/default/V1/inventory/source-items", {})
    assert status == 404
    assert "Magento_InventoryApi" not in call(magento, "GET", "/rest/default/V1/modules")[1]


# --- prices --------------------------------------------------------------------------------


def test_base_prices_answer_like_magentos_own_functional_test(magento):
    """Magento's BasePriceStorageTest::testUpdateWithInvalidParameters, row for row."""
    body = {"prices": [{"sku": "not_existing_sku", "price": -9999, "store_id": 9999}]}

    assert call(magento, "POST", "/rest/default/V1/products/base-prices", body) == (
        200,
        [
            {
                "message": "Invalid attribute %fieldName = %fieldValue.",
                "parameters": ["SKU", "not_existing_sku"],
            },
            {
                "message": "Invalid attribute %fieldName = %fieldValue.",
                "parameters": ["Price", "-9999"],
            },
            {
                "message": "Requested store is not found. Row ID: SKU = not_existing_sku, "
                "Store ID: 9999.",
                "parameters": ["not_existing_sku", "9999"],
            },
        ],
    )


def test_base_prices_save_valid_rows_and_answer_empty_list(magento):
    body = {
        "prices": [
            {"sku": "simple", "price": 9999, "store_id": 0},
            {"sku": "aalego500", "price": 45, "store_id": 1},
        ]
    }

    assert call(magento, "POST", "/rest/default/V1/products/base-prices", body) == (200, [])
    assert magento.price_of("simple") == 9999 and magento.price_of("AALEGO500") == 45


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, '"%fieldName" is required. Enter and try again.'),
        (
            {"prices": [{"sku": "simple", "price": "abc", "store_id": 0}]},
            'Error occurred during "price" processing. The "abc" value\'s type is invalid. '
            'The "float" type was expected. Verify and try again.',
        ),
    ],
)
def test_base_prices_body_errors_refuse_the_request(magento, body, message):
    status, answer = call(magento, "POST", "/rest/default/V1/products/base-prices", body)

    assert status == 400 and answer["message"] == message
    assert magento.price_of("simple") == 10


# --- stock ---------------------------------------------------------------------------------


def test_source_items_save_all_and_answer_empty_list(magento):
    body = {
        "sourceItems": [
            {"sku": "simple", "source_code": "default", "quantity": 7, "status": 1},
            {"sku": "AALEGO500", "source_code": "west", "quantity": 0, "status": 0},
        ]
    }

    assert call(magento, "POST", "/rest/default/V1/inventory/source-items", body) == (200, [])
    assert magento.quantity_of("simple") == 7
    assert magento.quantity_of("AALEGO500", "west") == 0
    assert magento.stock_status_of("AALEGO500", "west") == 0


def test_source_items_validation_refuses_all_with_magentos_errors(magento):
    body = {
        "sourceItems": [
            {"sku": "simple", "source_code": "default", "quantity": 7, "status": 1},
            {"sku": "", "source_code": "default", "quantity": 1, "status": 3},
        ]
    }

    assert call(magento, "POST", "/rest/default/V1/inventory/source-items", body) == (
        400,
        {
            "message": 'Validation Failed: "sku" can not be empty.',
            "errors": [
                {"message": '"%field" can not be empty.', "parameters": {"field": "sku"}},
                {"message": '"%field" should a known status.', "parameters": {"field": "status"}},
            ],
        },
    )
    assert magento.quantity_of("simple") == 100


@pytest.mark.parametrize(
    "bad_item",
    [
        {"sku": "NOSUCHSKU", "source_code": "default", "quantity": 1, "status": 1},
        {"sku": "simple", "source_code": "nosuchsource", "quantity": 1, "status": 1},
    ],
)
def test_source_items_with_unknown_sku_or_source_save_nothing(magento, bad_item):
    good = {"sku": "AALEGO500", "source_code": "default", "quantity": 1, "status": 1}

    assert call(
        magento,
        "POST",
        "/rest/default/V1/inventory/source-items",
        {"sourceItems": [good, bad_item]},
    ) == (400, {"message": "Could not save Source Item"})
    assert magento.quantity_of("AALEGO500") == 5


def test_source_items_accept_a_negative_quantity_as_msi_does(magento):
    body = {
        "sourceItems": [{"sku": "simple", "source_code": "default", "quantity": -2, "status": 0}]
    }

    assert call(magento, "POST", "/rest/default/V1/inventory/source-items", body)[0] == 200
    assert magento.quantity_of("simple") == -2


def test_input_limit_refuses_a_longer_list_with_magentos_type_name(magento):
    magento.input_limit = 20
    items = [
        {"sku": "simple", "source_code": "default", "quantity": n, "status": 1} for n in range(21)
    ]

    assert call(
        magento, "POST", "/rest/default/V1/inventory/source-items", {"sourceItems": items}
    ) == (
        400,
        {
            "message": 'Maximum items of type "%type" is %max',
            "parameters": {
                "type": "\\Magento\\InventoryApi\\Api\\Data\\SourceItemInterface",
                "max": 20,
            },
        },
    )
    assert call(
        magento, "POST", "/rest/default/V1/inventory/source-items", {"sourceItems": items[:20]}
    ) == (200, [])


def test_legacy_stock_item_answers_the_item_id(magento):
    body = {"stockItem": {"qty": 3, "is_in_stock": False}}

    status, item_id = call(magento, "PUT", "/rest/default/V1/products/simple/stockItems/1", body)

    assert status == 200 and item_id == 1
    assert magento.quantity_of("simple") == 3 and magento.stock_status_of("simple") == 0


def test_legacy_stock_item_of_unknown_sku_is_404(magento):
    body = {"stockItem": {"qty": 3, "is_in_stock": True}}

    assert call(magento, "PUT", "/rest/default/V1/products/NO%2FSKU/stockItems/1", body) == (
        404,
        {"message": 'Product with SKU "%1" does not exist', "parameters": ["NO/SKU"]},
    )


def test_sources_can_be_created(magento):
    body = {"source": {"source_code": "east", "name": "East", "enabled": True}}

    assert call(magento, "POST", "/rest/default/V1/inventory/sources", body) == (200, [])
    assert "east" in magento.sources


# --- log and helpers -----------------------------------------------------------------------


def test_log_records_each_request_without_the_token(magento):
    body = {"prices": [{"sku": "simple", "price": 1, "store_id": 0}]}
    call(magento, "POST", "/rest/default/V1/products/base-prices", body)
    call(magento, "GET", "/rest/default/V1/modules")

    first, second = magento.requests
    assert (first.method, first.path, first.json_body, first.status) == (
        "POST",
        "/rest/default/V1/products/base-prices",
        body,
        200,
    )
    assert first.headers["Authorization"] == "<redacted>"
    assert first.response_json == [] and second.method == "GET"
    assert magento.count("/V1/products/base-prices") == 1
    assert magento.count("/V1/modules", method="POST") == 0
    assert magento.calls("/V1/modules")[0] is second

    magento.reset_log()
    assert magento.requests == []


def test_catalog_helpers_are_case_insensitive_like_magentos_skus(magento):
    magento.add_product("NEW-1", price=3.5, sources={"default": 4, "east": 1})

    assert magento.price_of("new-1") == 3.5
    assert magento.quantity_of("NEW-1", "east") == 1
    assert magento.price_of("missing") is None and magento.quantity_of("missing") is None
    assert "east" in magento.sources


# --- faults --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "status", "text"),
    [
        ("503", 503, "Service Temporarily Unavailable"),
        (
            "500",
            500,
            "Internal Error. Details are available in Magento log file. Report ID: webapi-",
        ),
        ("html", 200, "<title>Home page</title>"),
        ("redirect", 302, ""),
        ("401", 401, "The consumer isn't authorized to access %resources."),
    ],
)
def test_fail_next_answers_the_fault_once_then_normally(magento, kind, status, text):
    magento.fail_next(1, kind)

    got_status, answer = call(magento, "GET", "/rest/default/V1/modules")
    assert got_status == status and text in (
        answer if isinstance(answer, str) else answer["message"]
    )
    assert call(magento, "GET", "/rest/default/V1/modules")[0] == 200
    assert [entry.status for entry in magento.requests] == [status, 200]


def test_drop_closes_without_an_answer_and_logs_no_status(magento):
    magento.fail_next(2, "drop")

    for _ in range(2):
        with pytest.raises(DropConnection):
            call(magento, "GET", "/rest/default/V1/modules")
    assert [entry.status for entry in magento.requests] == [None, None]


def test_fail_always_lasts_until_heal(magento):
    magento.fail_always("500")

    assert [call(magento, "GET", "/rest/default/V1/modules")[0] for _ in range(3)] == [500] * 3
    magento.heal()
    assert call(magento, "GET", "/rest/default/V1/modules")[0] == 200


def test_unknown_fault_kind_is_refused(magento):
    with pytest.raises(ValueError, match="unknown fault kind"):
        magento.fail_next(1, "teapot")


def test_maintenance_answers_503_page_everywhere_until_healed(magento):
    magento.maintenance = True

    status, page = call(magento, "POST", "/rest/default/V1/products/base-prices", {"prices": []})
    assert status == 503 and "maintenance" in page
    magento.heal()
    assert call(magento, "GET", "/rest/default/V1/modules")[0] == 200


def test_timeout_hangs_until_released_then_drops(magento):
    magento.fail_next(1, "timeout")
    threading.Timer(0.2, magento.release_waiters).start()
    started = time.perf_counter()

    with pytest.raises(DropConnection):
        call(magento, "GET", "/rest/default/V1/modules")

    assert 0.15 < time.perf_counter() - started < 5


def test_latency_is_added_to_every_answer(magento):
    magento.latency_ms = 50
    started = time.perf_counter()

    call(magento, "GET", "/rest/default/V1/modules")

    assert time.perf_counter() - started >= 0.05


# --- the server ----------------------------------------------------------------------------


def test_server_keeps_the_connection_alive_across_calls(magento):
    with serve(magento) as url:
        connection = http.client.HTTPConnection(url.removeprefix("http://"), timeout=5)
        for _ in range(3):
            connection.request("GET", "/rest/default/V1/modules", headers=AUTH)
            response = connection.getresponse()
            assert response.status == 200 and json.loads(response.read())
        sock = connection.sock
        connection.request("GET", "/rest/default/V1/modules", headers=AUTH)
        connection.getresponse().read()
        assert connection.sock is sock
        connection.close()


def test_server_drop_closes_the_socket_without_an_answer(magento):
    magento.fail_next(1, "drop")

    with serve(magento) as url:
        connection = http.client.HTTPConnection(url.removeprefix("http://"), timeout=5)
        connection.request("GET", "/rest/default/V1/modules", headers=AUTH)
        with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
            connection.getresponse()
        connection.close()
