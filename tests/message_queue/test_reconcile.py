"""The reconciliation report: every planted difference found, Fix all clears what can be fixed;
the Magento reads it needs (client and simulator, against the contract); its screen."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from connector.magento import MagentoClient
from message_queue import pull, reconcile
from message_queue.ingest import Notification, store_notification
from message_queue.models import Entity, ReconcileDifference, ReconcileRun
from sandbox import contracts
from sandbox.acumatica import AcumaticaSimulator
from sandbox.magento import DEFAULT_TOKEN
from setup_params.models import get_profile
from tests.message_queue.sync_fixtures import Clock, catalog, connected_acumatica, drain, sku

Kind = ReconcileDifference.Kind
Field = ReconcileDifference.Field


@pytest.fixture
def acumatica(profile):
    simulator = AcumaticaSimulator(catalog=False, clock=Clock())
    with connected_acumatica(simulator, profile):
        yield simulator


@pytest.fixture
def in_sync(acumatica, magento, profile):
    """30 items loaded and sent: both sides agree."""
    catalog(acumatica, magento, 30)
    acumatica.clock.advance(1)
    for entity in Entity.values:
        pull.execute(pull.create_run(profile, entity))
    drain()
    return profile


def set_in_magento(magento, sku_: str, *, price=None, quantity=None) -> None:
    """A change made in Magento's admin, behind the connector's back."""
    with magento._lock:
        product = magento.catalog[sku_]
        if price is not None:
            product.price = price
        if quantity is not None:
            product.sources["default"] = quantity


def plant_differences(acumatica, magento) -> None:
    set_in_magento(magento, sku(1), price=3.33)
    set_in_magento(magento, sku(2), quantity=999)
    acumatica.clock.advance(5)
    assert acumatica.change_price(sku(3), 77.7) == []  # push notifications are off
    acumatica.change_stock(sku(4), "MAIN", 12)
    acumatica.add_item("ONLYACU", price=9, stock={"MAIN": 4})
    magento.add_product("ONLYMAG", price=8, sources={"default": 6})
    acumatica.add_item("NOSOURCE", price=7, stock={"MAIN": 5})
    magento.add_product("NOSOURCE", price=7, sources={"east": 1})


def report(profile, **kwargs) -> ReconcileRun:
    return reconcile.run_report(reconcile.create_report(profile, started_by="test", **kwargs))


def found(run: ReconcileRun) -> set[tuple]:
    return {
        (d.sku, d.field, d.source_code, d.kind, d.acumatica_value, d.magento_value)
        for d in run.differences.all()
    }


def amount(text: str) -> Decimal:
    return Decimal(text).quantize(Decimal("0.0001"))


PLANTED = {
    (sku(1), Field.PRICE, "", Kind.DIFFERENT, amount("5.25"), amount("3.33")),
    (sku(2), Field.QUANTITY, "default", Kind.DIFFERENT, amount("2"), amount("999")),
    (sku(3), Field.PRICE, "", Kind.DIFFERENT, amount("77.7"), amount("5.75")),
    (sku(4), Field.QUANTITY, "default", Kind.DIFFERENT, amount("12"), amount("4")),
    ("NOSOURCE", Field.QUANTITY, "default", Kind.DIFFERENT, amount("5"), None),
    ("ONLYACU", Field.PRICE, "", Kind.MISSING_IN_MAGENTO, amount("9"), None),
    ("ONLYACU", Field.QUANTITY, "default", Kind.MISSING_IN_MAGENTO, amount("4"), None),
    ("ONLYMAG", Field.PRICE, "", Kind.MISSING_IN_ACUMATICA, None, amount("8")),
    ("ONLYMAG", Field.QUANTITY, "default", Kind.MISSING_IN_ACUMATICA, None, amount("6")),
}
MISSING = {difference for difference in PLANTED if difference[3] != Kind.DIFFERENT}


def test_the_report_finds_every_planted_difference_and_fix_all_clears_them(
    in_sync, acumatica, magento
):
    assert found(report(in_sync)) == set()
    plant_differences(acumatica, magento)

    run = report(in_sync)

    assert run.status == ReconcileRun.Status.SUCCEEDED, run.error
    assert found(run) == PLANTED
    assert (run.skus_compared, run.differences_found) == (33, 9)

    result = reconcile.fix(run, actor="tester")
    drain()

    assert result.queued == 5 and len(result.skipped) == 4
    assert magento.price_of(sku(1)) == 5.25 and magento.quantity_of(sku(2)) == 2
    assert magento.price_of(sku(3)) == 77.7 and magento.quantity_of(sku(4)) == 12
    assert magento.quantity_of("NOSOURCE") == 5
    assert found(report(in_sync)) == MISSING  # those need a product, or an item, by hand
    fixed = run.differences.filter(fixed_at__isnull=False)
    assert {d.fixed_by for d in fixed} == {"tester"} and fixed.count() == 5


def test_fix_selected_corrects_only_the_chosen_differences(in_sync, acumatica, magento):
    plant_differences(acumatica, magento)
    run = report(in_sync)
    chosen = run.differences.get(sku=sku(1))

    result = reconcile.fix(run, [chosen.pk], actor="tester")
    drain()

    assert result.queued == 1
    assert magento.price_of(sku(1)) == 5.25
    assert magento.quantity_of(sku(2)) == 999  # not chosen: still different
    assert run.differences.filter(fixed_at__isnull=False).count() == 1


def test_a_key_that_changed_after_the_report_began_is_left_alone(in_sync, acumatica, magento):
    plant_differences(acumatica, magento)
    run = report(in_sync)
    store_notification(get_profile("default"), Notification(
        query="MC-Prices", notification_id="later-push", timestamp=10**18,
        inserted=[{"InventoryID": sku(1), "DefaultPrice": 6.5}], deleted=[],
    ))

    result = reconcile.fix(run, actor="tester")
    drain()

    assert result.queued == 4
    assert (run.differences.get(sku=sku(1)), "SKU00001 changed after the report began: run "
            "the report again") in result.skipped
    assert magento.price_of(sku(1)) == 6.5  # the newer value, not the report's


def test_a_correction_is_newer_than_the_applied_value_and_older_than_what_follows(
    in_sync, acumatica, magento
):
    """The fresh TimeStamp beats the key's applied one; a change Acumatica makes later (its
    TimeStamp from Acumatica's clock, after the report's read) still wins."""
    set_in_magento(magento, sku(1), price=3.33)
    run = report(in_sync)
    reconcile.fix(run, actor="tester")
    acumatica.clock.advance(5)
    acumatica.change_price(sku(1), 8.0)
    pull.catch_up(get_profile("default"), entities=[Entity.PRICE],
                  now=lambda: acumatica.clock.moment())
    drain()

    assert magento.price_of(sku(1)) == 8.0


def test_the_report_can_be_limited_to_skus_starting_with_a_prefix(in_sync, acumatica, magento):
    plant_differences(acumatica, magento)

    run = report(in_sync, sku_prefix="only")

    assert {(d.sku, d.field) for d in run.differences.all()} == {
        ("ONLYACU", Field.PRICE), ("ONLYACU", Field.QUANTITY),
        ("ONLYMAG", Field.PRICE), ("ONLYMAG", Field.QUANTITY),
    }
    assert run.skus_compared == 2


def test_without_msi_only_prices_are_compared(in_sync, acumatica, magento):
    plant_differences(acumatica, magento)
    settings = in_sync.magento_settings
    settings.use_msi = False
    settings.save()

    run = report(get_profile("default"))

    assert {d.field for d in run.differences.all()} == {Field.PRICE}
    assert "not compared" in run.note


def test_a_side_that_cannot_be_read_fails_the_report_with_the_reason(in_sync, magento):
    magento.fail_always("401")

    run = report(in_sync)

    assert run.status == ReconcileRun.Status.FAILED
    assert "Magento refused the access token" in run.error


def test_only_one_report_of_a_profile_runs_at_a_time(in_sync):
    reconcile.create_report(in_sync, started_by="alice")

    with pytest.raises(reconcile.ReconcileError, match="started by alice"):
        reconcile.create_report(in_sync, started_by="bob")


# --- the Magento reads: client and simulator, against the contract -------------------------


@pytest.fixture
def magento_client(magento):
    with MagentoClient(magento.url, DEFAULT_TOKEN) as client:
        yield client


def test_source_items_come_in_pages_until_the_total_count(magento, magento_client):
    client = magento_client
    for number in range(7):
        magento.add_product(f"P{number}", sources={"default": number, "east": 1})
    magento.add_product("Q1", sources={"default": 3})

    pages = list(client.iter_source_items(sku_prefix="p", page_size=5))
    past_the_end = client.search_source_items(sku_prefix="p", page_size=5, current_page=9)

    assert [len(page.items) for page in pages] == [5, 5, 4]
    assert {page.total_count for page in pages} == {14}
    items = [(item.sku, item.source_code) for page in pages for item in page.items]
    assert items[:3] == [("P0", "default"), ("P0", "east"), ("P1", "default")]
    assert [item.sku for item in past_the_end.items] == [item.sku for item in pages[-1].items]
    only = client.search_source_items(["p2", "Q1"], source_code="default")
    assert [(item.sku, item.quantity, item.status) for item in only.items] == [
        ("P2", 2.0, 1), ("Q1", 3.0, 1)
    ]
    for entry in magento.calls("/V1/inventory/source-items", "GET"):
        contracts.validate_response("GET", "/V1/inventory/source-items", 200,
                                    entry.response_json)


def test_base_prices_information_names_unknown_skus_and_answers_the_rest(
    magento, magento_client
):
    client = magento_client
    magento.add_product("A1", price=2.5)
    magento.add_product("B2", price=4)

    lookup = client.get_base_prices(["A1", "nope", "b2", "Gone"])

    assert sorted((p.sku, p.price, p.store_id) for p in lookup.prices) == [
        ("A1", 2.5, 0), ("B2", 4.0, 0)
    ]
    assert sorted(lookup.unknown_skus) == ["Gone", "nope"]
    calls = magento.calls("/V1/products/base-prices-information")
    assert [call.status for call in calls] == [404, 200]
    assert calls[0].response_json == {
        "message": "Requested products don't exist: %sku", "parameters": {"sku": "nope, Gone"}
    }
    for call in calls:
        contracts.validate_request("POST", "/V1/products/base-prices-information",
                                   call.json_body)
    contracts.validate_response("POST", "/V1/products/base-prices-information", 200,
                                calls[1].response_json)


# --- the screen -----------------------------------------------------------------------------


def test_the_report_screen_lists_the_differences_and_fix_all_queues_them(
    in_sync, acumatica, magento, manager_client, monkeypatch
):
    plant_differences(acumatica, magento)
    monkeypatch.setattr(reconcile, "start", lambda run: reconcile.run_report(run))
    url = reverse("reconcile")

    manager_client.post(url, {"action": "run", "sku_prefix": ""})
    page = manager_client.get(url).content.decode()

    assert 'data-differences-found>9<' in page
    assert f'data-difference="{sku(1)}:price"' in page
    assert "Not in Magento" in page and "No source item in Magento" in page
    run = ReconcileRun.objects.get()
    response = manager_client.post(url, {"action": "fix_all", "report": run.pk}, follow=True)
    assert "5 corrections queued; 4 left alone" in response.content.decode()
    drain()
    assert magento.price_of(sku(1)) == 5.25


def test_viewers_see_the_report_but_cannot_run_or_fix(in_sync, viewer_client):
    run = report(in_sync)

    assert viewer_client.get(reverse("reconcile")).status_code == 200
    assert viewer_client.post(reverse("reconcile"), {"action": "run"}).status_code == 403
    assert viewer_client.post(reverse("reconcile"),
                              {"action": "fix_all", "report": run.pk}).status_code == 403
    status = viewer_client.get(reverse("reconcile_status")).json()
    assert status["report"]["status"] == "succeeded"
