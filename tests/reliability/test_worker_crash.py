"""A worker killed with `kill -9` in the middle of a batch: its lease brings the batch back,
and the batch it had claimed ahead of that call."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from message_queue.models import Message, SenderSlot, Status
from tests.helpers import wait_for
from tests.reliability.processes import wait_until_ready
from tests.reliability.queue_state import (
    PRICES,
    PROCESSOR_TASK,
    count,
    sent_but_not_at_magento,
    set_queue_settings,
    skus_sent,
    statuses,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]

RECORDS = 40
BATCH = 10
MAGENTO_LATENCY_MS = 1500


def test_a_worker_killed_mid_batch_resends_only_that_batch_after_its_lease(
    processes, send_task, profile, push, magento
):
    profile = set_queue_settings(profile, threshold_count=BATCH, batch_count=BATCH,
                                 check_process_time=1, process_sleep_time=1)
    skus = [f"CRASH{number:03d}" for number in range(RECORDS)]
    for sku in skus:
        magento.add_product(sku, price=1.0)
    push.prices([(sku, 19.5) for sku in skus])
    magento.latency_ms = MAGENTO_LATENCY_MS

    worker = processes("worker")
    send_task(PROCESSOR_TASK, profile.name, "price")
    # The first batch answered; the second on its way to Magento, the third claimed ahead.
    wait_for(
        lambda: count(Status.SENT) == BATCH and count(Status.PROCESSING) == 2 * BATCH,
        timeout=60, interval=0.05, message=f"the second batch in flight; log:\n{worker.output()}",
    )
    claimed = set(Message.objects.filter(status=Status.PROCESSING).values_list("sku", flat=True))
    worker.kill()

    # Magento still saves the batch the dead worker sent; nobody hears its answer.
    wait_for(lambda: magento.count(PRICES) == 2, timeout=10, message="the in-flight call")
    in_flight = {row["sku"] for row in magento.calls(PRICES)[1].json_body["prices"]}
    assert len(in_flight) == BATCH and in_flight < claimed
    assert statuses() == {"sent": BATCH, "processing": 2 * BATCH, "pending": RECORDS - 3 * BATCH}
    leased = Message.objects.filter(status=Status.PROCESSING)
    assert all(message.lease_until > timezone.now() for message in leased)

    # Time passes: the lease and the dead run's sender slot run out.
    past = timezone.now() - timedelta(seconds=1)
    leased.update(lease_until=past)
    SenderSlot.objects.update(expires_at=past)
    replacement = processes("worker")
    wait_until_ready(replacement)
    send_task(PROCESSOR_TASK, profile.name, "price")
    wait_for(lambda: count(Status.SENT) == RECORDS, timeout=60, interval=0.2,
             message=f"every message sent; log:\n{replacement.output()}")

    assert statuses() == {"sent": RECORDS}
    sent = skus_sent(magento)
    assert set(sent) == set(skus)
    assert {sku for sku, times in sent.items() if times > 1} == in_flight, (
        "duplicates at Magento are the one in-flight batch, no more"
    )
    assert max(sent.values()) == 2
    attempts = dict(Message.objects.values_list("sku", "attempts"))
    assert {sku: attempts[sku] for sku in claimed} == dict.fromkeys(claimed, 2), (
        "the killed call counts as an attempt, and so does the claim made ahead of it"
    )
    assert {attempts[sku] for sku in skus if sku not in claimed} == {1}
    assert all(magento.price_of(sku) == 19.5 for sku in skus)
    assert sent_but_not_at_magento(magento) == []
    assert replacement.alive
