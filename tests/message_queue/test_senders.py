"""Several senders of one (profile, entity) share the work and never send a message twice."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
from django.db import connection, connections

from message_queue.models import Message, SenderSlot, Status
from message_queue.processing import acquire_sender_slot, release_sender_slot, run_pass
from setup_params.models import get_profile
from tests.helpers import skip_or_fail

pytestmark = pytest.mark.django_db(transaction=True)

RECORDS = 400


@pytest.fixture
def backlog(profile, push, magento):
    if connection.vendor != "postgresql":
        skip_or_fail("concurrent senders are measured on PostgreSQL (set DATABASE_URL)")
    queue = profile.queue_settings
    queue.threshold_count, queue.batch_count, queue.senders = 25, 10, 2
    queue.save()
    magento.latency_ms = 20
    skus = [f"SKU{number:04d}" for number in range(RECORDS)]
    for sku in skus:
        magento.add_product(sku, price=1)
    return skus


def drain_with(senders: int) -> float:
    def sender():
        try:
            run_pass(get_profile(), "price")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=sender) for _ in range(senders)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.monotonic() - started


def test_two_senders_send_every_message_exactly_once_and_faster_than_one(backlog, push, magento):
    push.prices([(sku, 2.0) for sku in backlog[: RECORDS // 2]], timestamp=1)
    one_sender = drain_with(1)
    push.prices([(sku, 2.0) for sku in backlog[RECORDS // 2:]], timestamp=1)
    two_senders = drain_with(2)

    sent = Counter(
        row["sku"] for call in magento.calls("/base-prices") for row in call.json_body["prices"]
    )
    assert set(sent) == set(backlog)
    assert max(sent.values()) == 1, "no message is sent twice"
    assert Message.objects.exclude(status=Status.SENT).count() == 0
    assert two_senders < one_sender, (one_sender, two_senders)


def test_at_most_senders_runs_hold_a_slot_and_a_dead_holders_slot_expires(profile):
    first = acquire_sender_slot(profile, "price", 2, hold_seconds=50)
    second = acquire_sender_slot(profile, "price", 2, hold_seconds=50)
    assert first and second
    assert acquire_sender_slot(profile, "price", 2, hold_seconds=50) is None
    release_sender_slot(first)
    third = acquire_sender_slot(profile, "price", 2, hold_seconds=50)
    assert third is not None
    SenderSlot.objects.filter(holder=second).update(expires_at="2000-01-01T00:00:00Z")
    assert acquire_sender_slot(profile, "price", 2, hold_seconds=50) is not None
