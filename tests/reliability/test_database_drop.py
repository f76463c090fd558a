"""The worker's PostgreSQL connections are killed during a pass: the worker lives on."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from message_queue.models import Message, SenderSlot, Status
from tests.helpers import wait_for
from tests.reliability.processes import ChildProcess, finished_tasks, wait_until_ready
from tests.reliability.queue_state import (
    PRICES,
    PROCESSOR_TASK,
    count,
    sent_but_not_at_magento,
    set_queue_settings,
    statuses,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]

RECORDS = 40
BATCH = 10
THRESHOLD = BATCH - 1  # the last ten left are still sent as one batch
MAGENTO_LATENCY_MS = 1500


def terminate_other_connections() -> int:
    """What a database failover or an administrator does to every other session of the
    test database (the worker's among them)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


@pytest.fixture
def backlog(profile, push, magento):
    skus = [f"DROP{number:03d}" for number in range(RECORDS)]
    for sku in skus:
        magento.add_product(sku, price=1.0)
    push.prices([(sku, 7.25) for sku in skus])
    magento.latency_ms = MAGENTO_LATENCY_MS
    return skus


def kill_connections_during_second_call(worker: ChildProcess, magento) -> None:
    """While the second call is in flight the third batch is already claimed (a pass claims
    one batch ahead of the call in flight)."""
    wait_for(
        lambda: count(Status.SENT) == BATCH and count(Status.PROCESSING) == 2 * BATCH,
        timeout=60, interval=0.05, message=f"the second batch in flight; log:\n{worker.output()}",
    )
    assert terminate_other_connections() >= 1
    wait_for(lambda: magento.count(PRICES) == 2, timeout=10, message="the in-flight call")


def test_a_killed_database_connection_leaves_the_worker_alive_and_the_next_run_sends_the_rest(
    processes, send_task, profile, backlog, magento
):
    profile = set_queue_settings(profile, threshold_count=THRESHOLD, batch_count=BATCH,
                                 check_process_time=1, process_sleep_time=1)
    worker = processes("worker")
    wait_until_ready(worker)
    send_task(PROCESSOR_TASK, profile.name, "price")
    kill_connections_during_second_call(worker, magento)
    wait_for(lambda: finished_tasks(worker, PROCESSOR_TASK), timeout=20,
             message=f"the run to end; log:\n{worker.output()}")

    assert worker.alive, worker.output()
    # Magento saved the batch in flight, but the worker could not record it: it waits for
    # its lease, like a crash, and so does the batch claimed ahead of it. Nothing was lost
    # and nothing failed.
    assert statuses() == {"sent": BATCH, "processing": 2 * BATCH, "pending": RECORDS - 3 * BATCH}

    # Two minutes later (beat's next wake-ups): the lease and the run's sender slot ran out.
    past = timezone.now() - timedelta(seconds=1)
    Message.objects.filter(status=Status.PROCESSING).update(lease_until=past)
    SenderSlot.objects.update(expires_at=past)
    send_task(PROCESSOR_TASK, profile.name, "price")
    wait_for(lambda: count(Status.SENT) == RECORDS, timeout=30, interval=0.2,
             message=f"every message sent; log:\n{worker.output()}")

    assert worker.alive
    assert statuses() == {"sent": RECORDS}
    assert all(magento.price_of(sku) == 7.25 for sku in backlog)
    assert sent_but_not_at_magento(magento) == []


def test_a_killed_database_connection_costs_one_pass_and_the_same_run_sends_the_rest(
    processes, send_task, profile, backlog, magento
):
    profile = set_queue_settings(profile, threshold_count=THRESHOLD, batch_count=BATCH,
                                 check_process_time=12, process_sleep_time=1)
    worker = processes("worker")
    wait_until_ready(worker)
    send_task(PROCESSOR_TASK, profile.name, "price")
    kill_connections_during_second_call(worker, magento)

    # The run's next pass (a process sleep time later) reconnects and sends the batch
    # nobody had claimed; the one in flight and the one claimed ahead wait for their lease.
    wait_for(lambda: count(Status.SENT) == RECORDS - 2 * BATCH, timeout=10, interval=0.2,
             message=f"the next pass of the same run; log:\n{worker.output()}")
    Message.objects.filter(status=Status.PROCESSING).update(
        lease_until=timezone.now() - timedelta(seconds=1)
    )
    wait_for(lambda: count(Status.SENT) == RECORDS, timeout=10, interval=0.2,
             message=f"the expired lease sent again; log:\n{worker.output()}")

    assert worker.alive
    assert statuses() == {"sent": RECORDS}
    assert sent_but_not_at_magento(magento) == []
