"""The processing rules of DESIGN.md section 5, counted from the simulator's request log."""

from __future__ import annotations

import pytest
from django.db import connection

from message_queue.models import Attempt, Message, OutageGuard, Status
from message_queue.processing import claim, claim_from, run_pass
from message_queue.reprocess import reprocess
from setup_params.models import get_profile

PRICES = "/V1/products/base-prices"
SOURCE_ITEMS = "/V1/inventory/source-items"


def set_queue_settings(profile, **values):
    for name, value in values.items():
        setattr(profile.queue_settings, name, value)
    profile.queue_settings.save()
    return get_profile(profile.name)


def enqueue(push, magento, entity: str, count: int):
    skus = [f"SKU{number:04d}" for number in range(count)]
    for sku in skus:
        magento.add_product(sku, price=1.0, sources={"default": 0})
    if entity == "price":
        push.prices([(sku, 10.5) for sku in skus])
    else:
        push.stock([(sku, "MAIN", 7) for sku in skus])
    return skus


@pytest.mark.parametrize("entity,endpoint", [("price", PRICES), ("inventory", SOURCE_ITEMS)])
@pytest.mark.parametrize(
    "records,threshold,batch,expected_calls",
    [(50, 25, 25, 2), (50, 25, 5, 10), (20, 25, 25, 20), (55, 25, 25, 3)],
    ids=["50-25-25-two-calls", "50-25-5-ten-calls", "20-25-twenty-calls", "55-25-25-three-calls"],
)
def test_threshold_and_batch_count_decide_the_number_of_calls(
    profile, push, magento, entity, endpoint, records, threshold, batch, expected_calls
):
    profile = set_queue_settings(profile, threshold_count=threshold, batch_count=batch)
    skus = enqueue(push, magento, entity, records)

    report = run_pass(profile, entity)

    calls = magento.calls(endpoint)
    assert len(calls) == expected_calls
    body_key = "prices" if entity == "price" else "sourceItems"
    sizes = [len(call.json_body[body_key]) for call in calls]
    if records <= threshold:
        assert set(sizes) == {1}
    else:
        remainder = [records % batch] if records % batch else []
        assert sizes == [batch] * (records // batch) + remainder
    assert report.sent == records
    assert Message.objects.filter(status=Status.SENT).count() == records
    if entity == "price":
        assert all(magento.price_of(sku) == 10.5 for sku in skus)
    else:
        assert all(magento.quantity_of(sku) == 7 for sku in skus)


def test_each_http_call_writes_one_attempt_naming_its_messages(profile, push, magento):
    profile = set_queue_settings(profile, threshold_count=2, batch_count=3)
    enqueue(push, magento, "price", 5)
    run_pass(profile, "price")
    attempts = list(Attempt.objects.order_by("id"))
    assert [attempt.record_count for attempt in attempts] == [3, 2]
    assert all(attempt.status_code == 200 and attempt.ok for attempt in attempts)
    assert attempts[0].endpoint.endswith(PRICES)
    assert sorted(m.attempt_set.count() for m in Message.objects.all()) == [1] * 5


def test_a_message_that_fails_retry_count_times_is_failed_and_left_alone(profile, push, magento):
    profile = set_queue_settings(profile, retry_count=3, process_sleep_time=1)
    magento.add_product("AALEGO500", price=1)
    push.prices([("AALEGO500", 12.0)])
    magento.fail_next(3, "503")

    for _ in range(3):
        Message.objects.update(next_attempt_at=Message.objects.get().created_at)
        run_pass(profile, "price")

    message = Message.objects.get()
    assert message.status == Status.FAILED
    assert message.attempts == 3
    assert message.last_http_status == 503
    assert magento.count(PRICES) == 3

    run_pass(profile, "price")
    assert magento.count(PRICES) == 3, "a failed message is never retried by itself"

    assert reprocess(Message.objects.filter(pk=message.pk), actor="test") == 1
    run_pass(profile, "price")
    message.refresh_from_db()
    assert message.status == Status.SENT
    assert magento.price_of("AALEGO500") == 12.0


def test_a_rejected_token_trips_the_outage_guard_and_uses_no_attempt(profile, push, magento):
    magento.add_product("AALEGO500", price=1)
    push.prices([("AALEGO500", 12.0)])
    magento.token = "the-token-was-rotated-in-magento"

    for _ in range(4):
        report = run_pass(profile, "price")

    message = Message.objects.get()
    assert message.status == Status.PENDING
    assert message.attempts == 0
    guard = OutageGuard.objects.get(profile=profile, entity="price")
    assert guard.tripped
    assert "Allow OAuth Access Tokens" in guard.last_error
    assert report.outage
    assert magento.count(PRICES) == 4, "one probe call per pass while tripped"

    magento.token = profile.magento_settings.token
    run_pass(profile, "price")
    message.refresh_from_db()
    guard.refresh_from_db()
    assert message.status == Status.SENT
    assert not guard.tripped
    assert Message.objects.filter(status=Status.FAILED).count() == 0


def test_a_run_of_failed_calls_trips_the_guard_and_the_backlog_does_not_fail(
    profile, push, magento
):
    profile = set_queue_settings(profile, retry_count=3, threshold_count=25)
    profile.outage_threshold = 3
    profile.save()
    enqueue(push, magento, "price", 10)
    magento.fail_always("500")
    for _ in range(5):
        Message.objects.filter(status=Status.PENDING).update(
            next_attempt_at=Message.objects.order_by("id").first().created_at
        )
        run_pass(profile, "price")
    assert OutageGuard.objects.get(entity="price").tripped
    assert Message.objects.filter(status=Status.FAILED).count() == 0
    magento.heal()
    Message.objects.update(next_attempt_at=Message.objects.order_by("id").first().created_at)
    run_pass(profile, "price")
    assert Message.objects.filter(status=Status.SENT).count() == 10


def test_one_invalid_price_row_fails_alone_and_the_rest_are_sent(profile, push, magento):
    profile = set_queue_settings(profile, threshold_count=1, batch_count=10)
    for sku in ("GOOD1", "GOOD2"):
        magento.add_product(sku, price=1)
    magento.add_store("b2b", 5)
    push.prices([("GOOD1", 3.0), ("GOOD2", 4.0), ("NOSUCHSKU", 5.0)])
    bad = Message.objects.get(sku="GOOD2")
    bad.payload = {**bad.payload, "store_id": 999}
    bad.save()

    run_pass(profile, "price")

    assert magento.count(PRICES) == 1
    statuses = dict(Message.objects.values_list("sku", "status"))
    assert statuses == {"GOOD1": "sent", "GOOD2": "failed", "NOSUCHSKU": "skipped"}
    failed = Message.objects.get(sku="GOOD2")
    assert "Requested store is not found" in failed.last_error
    assert "%" not in failed.last_error, "placeholders are filled in"
    assert failed.attempts == 1
    assert magento.price_of("GOOD1") == 3.0


def test_one_invalid_source_item_is_isolated_and_the_valid_items_are_sent(profile, push, magento):
    profile = set_queue_settings(profile, threshold_count=1, batch_count=8)
    skus = enqueue(push, magento, "inventory", 7)
    push.stock([("NOT-IN-MAGENTO", "MAIN", 3)])

    run_pass(profile, "inventory")

    assert Message.objects.get(sku="NOT-IN-MAGENTO").status == Status.FAILED
    assert Message.objects.filter(status=Status.SENT).count() == 7
    assert all(magento.quantity_of(sku) == 7 for sku in skus)


def test_ten_changes_to_one_sku_before_a_pass_send_one_record_with_the_newest_value(
    profile, push, magento
):
    magento.add_product("AALEGO500", price=1)
    for timestamp in range(1, 11):
        push.prices([("AALEGO500", float(timestamp))], timestamp=timestamp)

    run_pass(profile, "price")

    calls = magento.calls(PRICES)
    assert [call.json_body["prices"] for call in calls] == [
        [{"sku": "AALEGO500", "price": 10.0, "store_id": 0}]
    ]
    assert magento.price_of("AALEGO500") == 10.0


def test_an_older_timestamp_arriving_last_does_not_win(profile, push, magento):
    magento.add_product("AALEGO500", price=1)
    push.prices([("AALEGO500", 20.0)], timestamp=200)
    push.prices([("AALEGO500", 10.0)], timestamp=100)
    run_pass(profile, "price")
    push.prices([("AALEGO500", 5.0)], timestamp=50)
    run_pass(profile, "price")
    assert magento.price_of("AALEGO500") == 20.0
    assert magento.count(PRICES) == 1


def test_a_change_arriving_while_its_key_is_in_flight_is_sent_after_it(profile, push, magento):
    magento.add_product("AALEGO500", price=1)
    push.prices([("AALEGO500", 1.0)], timestamp=1)
    in_flight = claim(profile, "price", 1, lease_seconds=60)
    push.prices([("AALEGO500", 2.0)], timestamp=2)

    assert Message.objects.filter(status=Status.PENDING).count() == 1
    assert claim(profile, "price", 10, lease_seconds=60) == [], "the key is in flight"

    Message.objects.filter(pk=in_flight[0].id).update(status=Status.SENT)
    run_pass(profile, "price")
    assert magento.price_of("AALEGO500") == 2.0


def test_a_pass_claims_onward_from_its_last_claim_and_the_next_pass_starts_over(
    profile, push, magento
):
    if connection.vendor != "postgresql":
        pytest.skip("positions are PostgreSQL's (SQLite has no dead index entries to skip)")
    enqueue(push, magento, "price", 4)
    first = claim_from(profile, "price", 2, lease_seconds=60)
    assert [m.sku for m in first.messages] == ["SKU0000", "SKU0001"]
    Message.objects.filter(sku="SKU0000").update(status=Status.PENDING)  # released

    onward = claim_from(profile, "price", 10, lease_seconds=60, after=first.position)
    assert [m.sku for m in onward.messages] == ["SKU0002", "SKU0003"]
    assert [m.sku for m in claim(profile, "price", 10, lease_seconds=60)] == ["SKU0000"]


def test_an_expired_lease_is_sent_by_the_next_pass_with_its_attempt_counted(
    profile, push, magento
):
    magento.add_product("AALEGO500", price=1)
    push.prices([("AALEGO500", 1.0)])
    claimed = claim(profile, "price", 1, lease_seconds=60)
    assert claimed, "the worker claimed it, then died before sending"
    Message.objects.update(lease_until=Message.objects.get().created_at)

    run_pass(profile, "price")

    message = Message.objects.get()
    assert message.status == Status.SENT
    assert message.attempts == 2
    assert magento.count(PRICES) == 1


def test_an_expired_lease_with_a_newer_pending_change_is_superseded_not_sent(
    profile, push, magento
):
    magento.add_product("AALEGO500", price=1)
    push.prices([("AALEGO500", 1.0)], timestamp=1)
    claim(profile, "price", 1, lease_seconds=60)
    push.prices([("AALEGO500", 2.0)], timestamp=2)
    Message.objects.filter(status=Status.PROCESSING).update(
        lease_until=Message.objects.earliest("id").created_at
    )

    run_pass(profile, "price")

    statuses = list(Message.objects.order_by("id").values_list("status", flat=True))
    assert statuses == [Status.SUPERSEDED, Status.SENT]
    assert [call.json_body["prices"][0]["price"] for call in magento.calls(PRICES)] == [2.0]


def test_the_input_limit_splits_the_batch_without_using_an_attempt(profile, push, magento):
    magento.input_limit = 20
    profile = set_queue_settings(profile, threshold_count=1, batch_count=50)
    enqueue(push, magento, "price", 45)

    run_pass(profile, "price")

    sizes = [len(call.json_body["prices"]) for call in magento.calls(PRICES)]
    assert sizes == [45, 20, 20, 5]
    assert set(Message.objects.values_list("status", "attempts")) == {(Status.SENT, 1)}


def test_paused_profiles_store_and_send_nothing(profile, push, magento):
    magento.add_product("AALEGO500", price=1)
    profile.state = profile.State.PAUSED
    profile.save()
    push.prices([("AALEGO500", 9.0)])
    report = run_pass(get_profile(), "price")
    assert report.left == 1
    assert magento.count(PRICES) == 0


def test_the_processors_keep_hourly_totals_for_the_dashboard(profile, push, magento):
    from message_queue.models import HourlyStats

    profile = set_queue_settings(profile, threshold_count=1, batch_count=10)
    enqueue(push, magento, "price", 12)
    push.prices([("NOSUCHSKU", 1.0)])
    run_pass(profile, "price")
    stats = HourlyStats.objects.get(profile=profile, entity="price")
    assert (stats.calls, stats.sent, stats.skipped, stats.failed) == (2, 12, 1, 0)
    assert stats.last_sent_at is not None


def test_a_maintenance_window_pauses_sending_and_fails_nothing(profile, push, magento):
    profile = set_queue_settings(profile, retry_count=3)
    magento.add_product("AALEGO500", price=1)
    push.prices([("AALEGO500", 12.0)])
    magento.maintenance = True

    for _ in range(6):
        report = run_pass(profile, "price")

    message = Message.objects.get()
    assert (message.status, message.attempts) == (Status.PENDING, 0)
    assert "maintenance mode" in report.outage
    magento.heal()
    run_pass(profile, "price")
    message.refresh_from_db()
    assert message.status == Status.SENT
    assert not OutageGuard.objects.get(entity="price").tripped
