"""The broker goes away while push notifications keep arriving: the receiver (which never
touches the broker) answers 200 and stores them, since the database is the truth; when the
broker is back, beat wakes the processors and every change reaches Magento."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import requests
from django.utils import timezone

from connector.lifecycle import ensure_schedulers, processor_schedulers
from message_queue.models import ReceivedNotification, Status
from tests.helpers import redis_answers, wait_for
from tests.message_queue.builders import notification, price_rows, stock_rows
from tests.reliability.processes import wait_until_ready
from tests.reliability.queue_state import count, set_queue_settings, statuses

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]

SKUS = [f"OUT{number:02d}" for number in range(8)]
# Beat wakes each processor every minute; the test starts 35 s after the last wake-up so
# that the next one comes about 25 s in, after the outage (if the test runs late and that
# wake-up is lost to the outage, the one a minute later does the work).
SINCE_LAST_WAKE_UP = timedelta(seconds=35)


def test_pushes_during_a_broker_outage_are_stored_and_beat_and_workers_catch_up(
    processes, private_redis, live_server, profile, magento
):
    for sku in SKUS:
        magento.add_product(sku, price=1.0, sources={"default": 0})
    profile = set_queue_settings(profile, check_process_time=3, process_sleep_time=1)
    ensure_schedulers(profile)
    processor_schedulers(profile).update(last_run_at=timezone.now() - SINCE_LAST_WAKE_UP)
    worker = processes("worker")
    beat = processes("beat")
    wait_until_ready(worker)
    wait_for(lambda: "beat: Starting" in beat.output(), timeout=30,
             message=f"beat to start; its log:\n{beat.output()}")

    private_redis.kill()
    assert not redis_answers(private_redis.url)
    url = f"{live_server.url}/acumatica/push/{profile.name}/"
    # (Connection: close, so that no request thread of the live server keeps its connection
    # to the test database open after the test)
    headers = {profile.push_header_name: profile.push_secret, "Content-Type": "application/json",
               "Connection": "close"}
    answers = []
    for number in range(1, 11):  # TimeStamps 1..10; SKU number % 8 changes twice or once
        sku = SKUS[number % len(SKUS)]
        for body in (
            notification(profile.price_query, price_rows([(sku, float(number))]),
                         timestamp=number),
            notification(profile.inventory_query, stock_rows([(sku, "MAIN", number)]),
                          timestamp=number),
        ):
            answers.append(requests.post(url, data=json.dumps(body), headers=headers,
                                         timeout=10))

    assert [answer.status_code for answer in answers] == [200] * 20
    assert ReceivedNotification.objects.count() == 20
    assert statuses() == {"pending": 2 * len(SKUS)}, "one pending message per key, newest value"
    wait_for(lambda: "Connection to broker lost" in worker.output(), timeout=30,
             message=f"the worker to notice the outage; its log:\n{worker.output()}")
    assert magento.requests == [], "nothing can wake the processors without the broker"

    private_redis.start()  # the same port: workers and beat reconnect by themselves
    wait_for(lambda: count(Status.SENT) == 2 * len(SKUS), timeout=100, interval=0.5,
             message=f"every change sent\nworker log:\n{worker.output()}\n"
             f"beat log:\n{beat.output()}")

    assert statuses() == {"sent": 2 * len(SKUS)}
    for index, sku in enumerate(SKUS):
        newest = max(number for number in range(1, 11) if number % len(SKUS) == index)
        assert (magento.price_of(sku), magento.quantity_of(sku)) == (newest, newest)
    assert worker.alive and beat.alive
    for task in processor_schedulers(profile):
        assert f"Sending due task {task.name}" in beat.output()
