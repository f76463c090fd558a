"""What the client sends and what the simulator answers match Magento's published schema."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.magento import MagentoClient, MagentoError
from sandbox import contracts
from sandbox.magento import MagentoSimulator
from sandbox.server import serve

TOKEN = "contract-token"
BASE_PRICES = "/V1/products/base-prices"
SOURCE_ITEMS = "/V1/inventory/source-items"
STOCK_ITEM = "/V1/products/{productSku}/stockItems/{itemId}"


@pytest.fixture
def magento() -> MagentoSimulator:
    simulator = MagentoSimulator(token=TOKEN)
    simulator.add_product("AALEGO500", price=49.99, sources={"default": 10})
    simulator.add_product("SKU/WITH SLASH", price=5, sources={"default": 1})
    return simulator


@pytest.fixture
def traffic(magento) -> list:
    """Every kind of call the connector makes, successes and refusals, as the simulator saw them."""
    with serve(magento) as url, MagentoClient(url, TOKEN) as client:
        client.test_connection()
        client.post_base_prices(
            [
                {"sku": "AALEGO500", "price": 45.5, "store_id": 0},
                {"sku": "SKU/WITH SLASH", "price": 1, "store_id": 1},
            ]
        )
        client.post_base_prices(
            [
                {"sku": "NOSUCHSKU", "price": 1, "store_id": 0},
                {"sku": "AALEGO500", "price": -1, "store_id": 7},
            ]
        )
        client.post_source_items(
            [{"sku": "AALEGO500", "source_code": "default", "quantity": 3, "status": 1}]
        )
        with pytest.raises(MagentoError):
            client.post_source_items(
                [{"sku": "NOSUCHSKU", "source_code": "default", "quantity": 0.5, "status": 0}]
            )
        client.put_stock_item("SKU/WITH SLASH", 4, True)
        with pytest.raises(MagentoError):
            client.put_stock_item("NOSUCHSKU", 0, False)
    return magento.requests


def test_every_request_body_the_client_sends_matches_the_contract(traffic):
    bodies = [entry for entry in traffic if entry.json_body is not None]

    assert {contracts.template_for(e.method, e.path) for e in bodies} == {
        BASE_PRICES,
        SOURCE_ITEMS,
        STOCK_ITEM,
    }
    for entry in bodies:
        template = contracts.template_for(entry.method, entry.path)
        contracts.validate_request(entry.method, template, entry.json_body)


def test_every_success_answer_of_the_simulator_matches_the_contract(traffic):
    successes = [entry for entry in traffic if entry.status == 200]

    assert len(successes) == 6
    for entry in successes:
        template = contracts.template_for(entry.method, entry.path)
        contracts.validate_response(entry.method, template, entry.status, entry.response_json)


def test_price_failures_answer_matches_the_contract(traffic):
    failures = [e.response_json for e in traffic if e.path.endswith(BASE_PRICES)][1]

    assert len(failures) == 3
    contracts.validate_response("POST", BASE_PRICES, 200, failures)


@pytest.mark.parametrize(
    ("method", "template", "body"),
    [
        ("POST", BASE_PRICES, {}),
        ("POST", BASE_PRICES, {"prices": {"sku": "A", "price": 1, "store_id": 0}}),
        ("POST", BASE_PRICES, {"prices": [{"sku": "A", "price": "1.00", "store_id": 0}]}),
        ("POST", BASE_PRICES, {"prices": [{"sku": "A", "price": {"value": 1}, "store_id": 0}]}),
        ("POST", BASE_PRICES, {"prices": [{"sku": "A", "price": 1}]}),
        ("POST", BASE_PRICES, {"prices": [{"sku": "A", "price": 1, "store_id": "0"}]}),
        ("POST", SOURCE_ITEMS, {"source_items": []}),
        ("POST", SOURCE_ITEMS, {"sourceItems": [{"sku": "A", "quantity": "7"}]}),
        ("PUT", STOCK_ITEM, {"qty": 1, "is_in_stock": True}),
        ("PUT", STOCK_ITEM, {"stockItem": {"qty": "1", "is_in_stock": "yes"}}),
    ],
)
def test_a_wrong_request_body_is_caught(method, template, body):
    with pytest.raises(contracts.ContractError) as caught:
        contracts.validate_request(method, template, body)

    assert caught.value.errors


@pytest.mark.parametrize(
    ("method", "template", "body"),
    [
        ("GET", "/V1/modules", [1, 2]),
        ("GET", "/V1/store/storeConfigs", [{"id": 1, "code": "default"}]),
        ("POST", BASE_PRICES, [{"message": "Invalid attribute"}]),
        ("PUT", STOCK_ITEM, "1"),
        ("POST", SOURCE_ITEMS, {"unexpected": True}),
    ],
)
def test_a_wrong_success_answer_is_caught(method, template, body):
    with pytest.raises(contracts.ContractError):
        contracts.validate_response(method, template, 200, body)


def test_error_answers_are_not_checked_against_the_generated_schema():
    with pytest.raises(ValueError, match="only success answers"):
        contracts.validate_response("POST", BASE_PRICES, 400, {"message": "x"})


@pytest.mark.parametrize(
    ("method", "path", "template"),
    [
        ("POST", "/rest/default/V1/products/base-prices", BASE_PRICES),
        ("PUT", "/rest/all/V1/products/A%2F1/stockItems/1", STOCK_ITEM),
        ("GET", "/rest/V1/store/storeConfigs?storeCodes[]=default", "/V1/store/storeConfigs"),
        ("GET", "/V1/modules", "/V1/modules"),
    ],
)
def test_request_paths_map_to_the_contracts_templates(method, path, template):
    assert contracts.template_for(method, path) == template


def test_validators_are_compiled_once():
    assert contracts.request_validator("POST", BASE_PRICES) is contracts.request_validator(
        "POST", BASE_PRICES
    )


def test_contract_location_can_be_set_by_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(contracts.CONTRACT_PATH_VARIABLE, str(tmp_path / "elsewhere.json"))

    assert contracts.contract_path() == tmp_path / "elsewhere.json"
    with pytest.raises(FileNotFoundError, match=contracts.CONTRACT_PATH_VARIABLE):
        contracts.load_contract(Path(tmp_path / "elsewhere.json"))
