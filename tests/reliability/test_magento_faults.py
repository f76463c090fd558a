"""Magento misbehaves: slow beyond the timeout, 500s, 503 pages, dropped connections, an HTML
page with status 200, hangs, a maintenance window. Each is retried or trips the outage guard;
after the window everything is sent, nothing is `failed`, and nothing is `sent` that Magento
did not accept. Passes run in-process against the served simulator."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connections
from django.utils import timezone

from message_queue.models import Attempt, Message, OutageGuard, Status
from message_queue.processing import PassReport, run_pass
from sandbox.magento import MagentoSimulator
from setup_params.models import Profile, get_profile
from tests.helpers import wait_for
from tests.reliability.queue_state import (
    PRICES,
    SOURCE_ITEMS,
    count,
    sent_but_not_at_magento,
    set_magento_timeout,
    set_queue_settings,
    statuses,
)

pytestmark = pytest.mark.django_db

MAGENTO_TIMEOUT_SECONDS = 1
SLOW_MS = 1500  # beyond the timeout: Magento saves the change, nobody hears the answer
FAULTS = ["slow", "500", "503", "drop", "html", "timeout", "maintenance"]
RETRIED_FAULTS = [kind for kind in FAULTS if kind != "maintenance"]


def start_fault(magento: MagentoSimulator, kind: str) -> None:
    if kind == "slow":
        magento.latency_ms = SLOW_MS
    elif kind == "maintenance":
        magento.maintenance = True
    elif kind == "timeout":
        magento.hang_seconds = 5  # then the connection drops without an answer
        magento.fail_always("timeout")
    else:
        magento.fail_always(kind)


def end_fault(magento: MagentoSimulator) -> None:
    magento.heal()
    magento.latency_ms = 0


def next_pass(profile: Profile, entity: str = "price") -> PassReport:
    """A pass once the retry backoff has run out (every pending message is due)."""
    Message.objects.filter(status=Status.PENDING).update(next_attempt_at=timezone.now())
    return run_pass(get_profile(profile.name), entity)


def sent_stock_not_at_magento(magento: MagentoSimulator) -> list[str]:
    return [
        f"{message.sku}: sent {message.payload['warehouses']}, Magento has "
        f"{magento.quantity_of(message.sku, message.payload['source_code'])}"
        for message in Message.objects.filter(entity="inventory", status=Status.SENT)
        if magento.quantity_of(message.sku, message.payload["source_code"])
        != sum(message.payload["warehouses"].values())
    ]


@pytest.fixture
def faulty(profile) -> Profile:
    """Retry count 3, outage threshold 5 (the defaults), a 1 s Magento timeout."""
    profile = set_queue_settings(profile, retry_count=3, threshold_count=5, batch_count=4,
                                 process_sleep_time=1)
    assert profile.outage_threshold == 5
    return set_magento_timeout(profile, MAGENTO_TIMEOUT_SECONDS)


def enqueue(push, magento, entity: str, records: int) -> list[str]:
    skus = [f"FAULT{number:03d}" for number in range(records)]
    for sku in skus:
        magento.add_product(sku, price=1.0, sources={"default": 0})
    if entity == "price":
        push.prices([(sku, 10.5) for sku in skus])
    else:
        push.stock([(sku, "MAIN", 7) for sku in skus])
    return skus


@pytest.mark.parametrize(
    "entity,kind",
    [("price", kind) for kind in FAULTS]
    + [("inventory", kind) for kind in ("500", "drop", "html", "maintenance")],
)
def test_a_fault_window_over_a_backlog_pauses_sending_and_fails_nothing(
    faulty, push, magento, entity, kind
):
    skus = enqueue(push, magento, entity, 12)  # 3 calls of 4 a pass
    start_fault(magento, kind)
    for _ in range(4):
        report = next_pass(faulty, entity)
        assert count(Status.FAILED) == 0
        assert count(Status.SENT) == 0, "Magento accepted nothing: nothing is marked sent"
    guard = OutageGuard.objects.get(profile=faulty, entity=entity)
    assert guard.tripped, "the run of failed calls paused sending"
    assert report.outage
    assert not Attempt.objects.filter(ok=True).exists()

    end_fault(magento)
    next_pass(faulty, entity)
    next_pass(faulty, entity)

    assert statuses() == {"sent": 12}
    guard.refresh_from_db()
    assert not guard.tripped
    if entity == "price":
        assert all(magento.price_of(sku) == 10.5 for sku in skus)
    else:
        assert all(magento.quantity_of(sku) == 7 for sku in skus)
    assert sent_but_not_at_magento(magento) == []
    assert sent_stock_not_at_magento(magento) == []


@pytest.mark.parametrize("kind", FAULTS)
def test_a_short_fault_on_one_message_is_retried_and_the_message_sent(
    faulty, push, magento, kind
):
    enqueue(push, magento, "price", 1)
    start_fault(magento, kind)
    next_pass(faulty)
    next_pass(faulty)
    assert count(Status.FAILED) == 0
    assert count(Status.SENT) == 0
    end_fault(magento)
    next_pass(faulty)

    message = Message.objects.get()
    assert message.status == Status.SENT
    # (a slow Magento logs a call when it has answered, after the client gave up on it)
    wait_for(lambda: magento.count(PRICES) == 3, timeout=5, message="two failed calls and one "
             "accepted")
    # A maintenance page is not the message's fault: it trips the guard and costs no attempt.
    assert message.attempts == (1 if kind == "maintenance" else 3)
    assert magento.price_of("FAULT000") == 10.5


def test_a_long_maintenance_window_on_a_single_message_fails_nothing(faulty, push, magento):
    """Magento's maintenance page trips the guard at once. Other faults are the message's
    retries (retry count 3 < outage threshold 5): a lone message under a long 500 window is
    Failed after 3 attempts, as the product's retry rule says, and Reprocess sends it again;
    a backlog under the same window trips the guard first (the backlog test above)."""
    kind = "maintenance"
    enqueue(push, magento, "price", 1)
    start_fault(magento, kind)
    for _ in range(6):
        next_pass(faulty)
        assert count(Status.FAILED) == 0, Message.objects.get().last_error
    assert OutageGuard.objects.get(profile=faulty, entity="price").tripped
    end_fault(magento)
    next_pass(faulty)

    assert statuses() == {"sent": 1}
    assert magento.price_of("FAULT000") == 10.5


def test_an_html_page_with_status_200_is_not_taken_for_success(faulty, push, magento):
    """The one fault that answers 200: only JSON counts as Magento's acceptance."""
    skus = enqueue(push, magento, "price", 3)
    magento.fail_next(2, "html")
    next_pass(faulty)

    assert statuses() == {"pending": 2, "sent": 1}
    attempts = list(Attempt.objects.order_by("id").values_list("status_code", "ok"))
    assert attempts == [(200, False), (200, False), (200, True)]
    assert [magento.price_of(sku) for sku in skus].count(10.5) == 1
    assert sent_but_not_at_magento(magento) == []
    next_pass(faulty)
    assert statuses() == {"sent": 3}


def test_a_batch_that_failed_is_retried_by_the_next_pass_not_the_same_one(
    faulty, push, magento
):
    enqueue(push, magento, "inventory", 12)
    magento.fail_next(2, "drop")  # the pass's first two calls of 4 source items
    next_pass(faulty, "inventory")
    assert statuses() == {"pending": 8, "sent": 4}
    next_pass(faulty, "inventory")
    assert statuses() == {"sent": 12}
    assert magento.count(SOURCE_ITEMS) == 5
    assert sent_stock_not_at_magento(magento) == []


def test_stock_sent_while_magento_drops_connections_is_retried_not_lost(faulty, push, magento):
    enqueue(push, magento, "inventory", 12)
    magento.fail_next(2, "drop")
    next_pass(faulty, "inventory")
    next_pass(faulty, "inventory")

    assert statuses() == {"sent": 12}
    assert Attempt.objects.filter(ok=False, status_code=None).count() == 2
    assert all(magento.quantity_of(f"FAULT{number:03d}") == 7 for number in range(12))
    assert sent_stock_not_at_magento(magento) == []


@pytest.mark.django_db(transaction=True)  # the pass runs in a thread of its own
@pytest.mark.parametrize("newer_arrives", ["during the call", "after the timeout"])
def test_a_newer_price_sent_after_a_timed_out_call_is_not_overwritten_by_the_late_save(
    faulty, push, magento, newer_arrives
):
    magento.add_product("LATE", price=1.0)
    push.prices([("LATE", 10.0)], timestamp=1)
    magento.latency_ms = 2500  # Magento saves 10.0 after 2.5 s; the connector gives up at 1 s
    first_pass = threading.Thread(target=pass_in_thread, args=(faulty.name,))
    first_pass.start()
    wait_for(lambda: count(Status.PROCESSING) == 1, timeout=5, message="the call in flight")
    if newer_arrives == "during the call":
        push.prices([("LATE", 20.0)], timestamp=2)
    first_pass.join()
    if newer_arrives == "after the timeout":
        push.prices([("LATE", 20.0)], timestamp=2)
    magento.latency_ms = 0

    # A run's passes, in real time (the retry backoff is not skipped here).
    until = time.monotonic() + 4
    while time.monotonic() < until:
        run_pass(get_profile(faulty.name), "price")
        time.sleep(0.2)
    wait_for(lambda: magento.count(PRICES) >= 2, timeout=5, message="the late save")

    assert Message.objects.filter(status=Status.SENT).get().payload["price"] == 20.0
    assert magento.price_of("LATE") == 20.0, "the newest TimeStamp's price ends at Magento"
    assert sent_but_not_at_magento(magento) == []


def pass_in_thread(profile_name: str) -> None:
    try:
        run_pass(get_profile(profile_name), "price")
    finally:
        connections.close_all()
