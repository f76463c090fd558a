"""POST /acumatica/push/<profile>/: answers in DESIGN.md section 6's order, nothing partial."""

from __future__ import annotations

import json

import pytest

from message_queue.models import KeyState, Message, ReceivedNotification
from message_queue.processing import run_pass
from tests.message_queue.builders import notification, stock_rows

ACUMATICA_SAMPLE = {
    "Inserted": [{"Warehouse": "MAIN ", "InventoryID": "AALEGO500",
                  "Description": "Lego, 500 piece set", "QtyOnHand": 1999, "QtyAvailable": 1976}],
    "Deleted": [{"Warehouse": "MAIN", "InventoryID": "AALEGO500 ",
                 "Description": "Lego, 500 piece set", "QtyOnHand": 1999, "QtyAvailable": 1977}],
    "Query": "Item Availability Data",
    "CompanyId": "MyStore",
    "Id": "06284bdf-2952-4a9a-bf60-2ad0cd33924e",
    "TimeStamp": 638465233453014192,
    "AdditionalInfo": {"PXPerformanceInfoStartTime": "03/20/2025 09:22:24"},
}


def stored_rows():
    return (
        Message.objects.count(),
        KeyState.objects.count(),
        ReceivedNotification.objects.count(),
    )


@pytest.fixture
def valid_body(profile):
    return notification(profile.inventory_query, stock_rows([("AALEGO500", "MAIN", 5)]))


def test_unknown_profile_is_404(push, valid_body):
    response = push.client.post("/acumatica/push/nosuch/", data=json.dumps(valid_body),
                                content_type="application/json")
    assert response.status_code == 404
    assert stored_rows() == (0, 0, 0)


def test_missing_secret_is_401_and_stores_nothing(push, valid_body):
    response = push.post(valid_body, secret=None)
    assert response.status_code == 401
    assert "X-Connector-Secret" in response.json()["error"]
    assert stored_rows() == (0, 0, 0)


def test_wrong_secret_is_403_and_stores_nothing(push, valid_body):
    response = push.post(valid_body, secret="not-the-secret")
    assert response.status_code == 403
    assert stored_rows() == (0, 0, 0)


def test_the_secret_travels_in_the_header_the_profile_names(push, profile, valid_body):
    profile.push_header_name = "X-Acumatica-Token"
    profile.save()
    assert push.post(valid_body, header="X-Connector-Secret").status_code == 401
    assert push.post(valid_body, header="X-Acumatica-Token").status_code == 200


def test_a_stopped_profile_answers_503_so_acumatica_keeps_the_notification(push, profile,
                                                                            valid_body):
    profile.state = profile.State.STOPPED
    profile.save()
    response = push.post(valid_body)
    assert response.status_code == 503
    assert stored_rows() == (0, 0, 0)


def test_a_body_over_the_limit_is_413_before_it_is_read(push, profile, valid_body):
    profile.push_max_bytes = 1024
    profile.save()
    big = notification(profile.inventory_query,
                       stock_rows([(f"SKU{i}", "MAIN", i) for i in range(100)]))
    response = push.post(big)
    assert response.status_code == 413
    assert stored_rows() == (0, 0, 0)


def test_a_body_over_django_default_upload_limit_is_accepted_under_the_profile_limit(push, profile):
    rows = stock_rows([(f"SKU{i:06d}", "MAIN", i) for i in range(30_000)])
    body = notification(profile.inventory_query, rows)
    assert len(json.dumps(body)) > 2.5 * 1024 * 1024
    response = push.post(body)
    assert response.status_code == 200, response.content
    assert Message.objects.count() == 30_000


@pytest.mark.parametrize(
    "body,reason",
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        ({"Inserted": [], "Deleted": [], "Id": "x", "TimeStamp": 1}, "'Query'"),
        ({"Query": "MC-Inventory", "Id": "x", "TimeStamp": "yesterday"}, "'TimeStamp'"),
        ({"Query": "MC-Inventory", "TimeStamp": 1}, "'Id'"),
        ({"Query": "MC-Inventory", "Id": "x", "TimeStamp": 1, "Inserted": {"a": 1}},
         "'Inserted' must be a list"),
        ({"Query": "MC-Inventory", "Id": "x", "TimeStamp": 1,
          "Inserted": [{"Warehouse": "MAIN", "QtyAvailable": 1}]}, "'InventoryID'"),
        ({"Query": "MC-Inventory", "Id": "x", "TimeStamp": 1,
          "Inserted": [{"InventoryID": "A", "Warehouse": "MAIN", "QtyAvailable": "lots"}]},
         "'QtyAvailable' must be a number"),
    ],
    ids=["not-json", "not-object", "no-query", "bad-timestamp", "no-id", "inserted-not-list",
         "row-without-sku", "quantity-not-number"],
)
def test_a_malformed_notification_is_400_saying_what_is_wrong(push, body, reason):
    response = push.post(body)
    assert response.status_code == 400
    assert reason in response.json()["error"]
    assert stored_rows() == (0, 0, 0)


def test_an_unknown_query_is_422_naming_the_known_ones(push):
    response = push.post(notification("Item Availability Data", []))
    assert response.status_code == 422
    error = response.json()["error"]
    assert "'MC-Inventory'" in error and "'MC-Prices'" in error
    assert stored_rows() == (0, 0, 0)


def test_a_repeated_notification_answers_200_and_stores_nothing_new(push, valid_body):
    first = push.post(valid_body)
    assert first.json()["status"] == "stored"
    before = stored_rows()
    again = push.post(valid_body)
    assert again.status_code == 200
    assert again.json()["status"] == "duplicate"
    assert stored_rows() == before


def test_two_warehouse_rows_of_one_sku_fold_into_one_message_with_their_sum(push, magento,
                                                                             profile):
    magento.add_product("AALEGO500", sources={"default": 0})
    push.stock([("AALEGO500", "MAIN", 5), ("AALEGO500", "EAST", 7)])
    assert Message.objects.count() == 1
    run_pass(profile, "inventory")
    assert magento.quantity_of("AALEGO500") == 12


def test_several_warehouses_on_one_source_send_the_sum_of_their_last_quantities(
    push, magento, profile
):
    magento.add_product("AALEGO500", sources={"default": 0})
    push.stock([("AALEGO500", "MAIN", 5)], timestamp=1)
    push.stock([("AALEGO500", "EAST", 7)], timestamp=2)
    run_pass(profile, "inventory")
    push.stock([("AALEGO500", "MAIN", 1)], timestamp=3)
    run_pass(profile, "inventory")
    bodies = [call.json_body["sourceItems"] for call in magento.calls("/source-items")]
    assert [items[0]["quantity"] for items in bodies] == [12, 8]


def test_unmapped_warehouses_are_skipped_and_counted(push, profile):
    profile.warehouse_sources = "MAIN=default"
    profile.save()
    response = push.stock([("AALEGO500", "MAIN", 5), ("AALEGO500", "RETURNS", 9)])
    assert response.json()["unmapped_warehouse_rows"] == 1
    assert Message.objects.get().payload["warehouses"] == {"MAIN": 5.0}


def test_a_deleted_row_without_an_inserted_partner_sends_zero_and_out_of_stock(
    push, magento, profile
):
    magento.add_product("AALEGO500", sources={"default": 4})
    push.stock([], deleted=[("AALEGO500", "MAIN", 4)])
    run_pass(profile, "inventory")
    item = magento.calls("/source-items")[0].json_body["sourceItems"][0]
    assert item == {"sku": "AALEGO500", "source_code": "default", "quantity": 0, "status": 0}


def test_a_null_quantity_means_unchanged_never_zero(push, profile):
    response = push.stock([("AALEGO500", "MAIN", None)])
    assert response.json()["unchanged_rows"] == 1
    assert Message.objects.count() == 0


def test_acumaticas_documented_sample_becomes_the_right_source_item_request(push, magento,
                                                                            profile):
    profile.inventory_query = "Item Availability Data"
    profile.save()
    magento.add_product("AALEGO500", sources={"default": 0})
    response = push.post(ACUMATICA_SAMPLE)
    assert response.status_code == 200, response.content
    run_pass(profile, "inventory")
    (call,) = magento.calls("/V1/inventory/source-items")
    assert call.json_body == {
        "sourceItems": [
            {"sku": "AALEGO500", "source_code": "default", "quantity": 1976, "status": 1}
        ]
    }


def test_pause_stores_and_sends_nothing_then_activate_drains(push, magento, profile):
    from connector.lifecycle import activate, pause

    magento.add_product("AALEGO500", price=1)
    pause(profile, actor="test")
    push.prices([("AALEGO500", 9.5)])
    run_pass(profile, "price")
    assert magento.count("/base-prices") == 0
    activate(profile, actor="test")
    run_pass(profile, "price")
    assert magento.price_of("AALEGO500") == 9.5
