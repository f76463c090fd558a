"""200 push notifications at once, with overlapping SKUs, against gunicorn on PostgreSQL:
every one answered 200 (no 500, no deadlock) while a sender drains the queue, and at the end
Magento holds, per key, the value of the newest TimeStamp."""

from __future__ import annotations

import json
import random
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from django.db import connections

from message_queue.models import Message, ReceivedNotification, Status
from message_queue.processing import run_pass
from setup_params.models import get_profile
from tests.helpers import wait_for
from tests.message_queue.builders import notification, price_rows, stock_rows
from tests.reliability.processes import free_port, port_answers

pytestmark = [pytest.mark.django_db(transaction=True)]

NOTIFICATIONS = 200
SKUS = [f"HOT{number:02d}" for number in range(12)]
WAREHOUSES = ["MAIN", "EAST"]  # both on the `default` source: Magento gets their sum
PARALLEL_POSTS = 16


def build_notifications(profile, seed: int = 7) -> list[dict]:
    """Overlapping SKUs, TimeStamps in an order unrelated to the order of posting."""
    chance = random.Random(seed)
    timestamps = chance.sample(range(638_000_000_000_000_000, 638_000_000_000_100_000),
                               NOTIFICATIONS)
    bodies = []
    for number, timestamp in enumerate(timestamps):
        skus = chance.sample(SKUS, chance.randint(1, 6))
        if number % 2:
            rows = [(sku, round(chance.uniform(1, 500), 2)) for sku in skus]
            bodies.append(notification(profile.price_query, price_rows(rows),
                                       timestamp=timestamp))
        else:
            rows = [(sku, chance.choice(WAREHOUSES), chance.randint(0, 90)) for sku in skus]
            bodies.append(notification(profile.inventory_query, stock_rows(rows),
                                       timestamp=timestamp))
    return bodies


def newest_values(bodies: list[dict], profile) -> tuple[dict, dict]:
    """Per SKU the price of its newest TimeStamp; per SKU the sum over warehouses of each
    warehouse's newest quantity."""
    prices: dict[str, tuple[int, float]] = {}
    stock: dict[tuple[str, str], tuple[int, float]] = {}
    for body in bodies:
        for row in body["Inserted"]:
            if body["Query"] == profile.price_query:
                seen = prices.get(row["InventoryID"])
                if seen is None or seen[0] < body["TimeStamp"]:
                    prices[row["InventoryID"]] = (body["TimeStamp"], row["DefaultPrice"])
            else:
                key = (row["InventoryID"], row["Warehouse"])
                seen = stock.get(key)
                if seen is None or seen[0] < body["TimeStamp"]:
                    stock[key] = (body["TimeStamp"], row["QtyAvailable"])
    quantities: dict[str, float] = {}
    for (sku, _warehouse), (_timestamp, quantity) in stock.items():
        quantities[sku] = quantities.get(sku, 0) + quantity
    return {sku: price for sku, (_, price) in prices.items()}, quantities


@pytest.fixture
def gunicorn(processes):
    port = free_port()
    server = processes("gunicorn", "--workers", "4", "--bind", f"127.0.0.1:{port}",
                       ALLOWED_HOSTS="127.0.0.1")
    wait_for(lambda: port_answers(port) or not server.alive, timeout=60,
             message="gunicorn to listen")
    assert server.alive, server.output()
    server.url = f"http://127.0.0.1:{port}"
    return server


def drain_while(pushing: threading.Event, profile_name: str, errors: list) -> None:
    """A sender running passes for both entities while notifications arrive."""
    try:
        while pushing.is_set():
            for entity in ("price", "inventory"):
                run_pass(get_profile(profile_name), entity)
    except Exception as error:  # noqa: BLE001 - reported by the test
        errors.append(error)
    finally:
        connections.close_all()


def test_two_hundred_concurrent_pushes_all_answer_200_and_magento_ends_with_the_newest_values(
    gunicorn, profile, magento
):
    for sku in SKUS:
        magento.add_product(sku, price=1.0, sources={"default": 0})
    bodies = build_notifications(profile)
    url = f"{gunicorn.url}/acumatica/push/{profile.name}/"
    headers = {profile.push_header_name: profile.push_secret,
               "Content-Type": "application/json"}

    def post(body: dict) -> tuple[int, dict | str]:
        with requests.Session() as session:
            response = session.post(url, data=json.dumps(body), headers=headers, timeout=60)
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, response.text[:300]

    pushing = threading.Event()
    pushing.set()
    sender_errors: list[Exception] = []
    sender = threading.Thread(target=drain_while, args=(pushing, profile.name, sender_errors))
    sender.start()
    try:
        with ThreadPoolExecutor(PARALLEL_POSTS) as pool:
            answers = list(pool.map(post, bodies))
        calls_while_pushing = len(magento.requests)
    finally:
        pushing.clear()
        sender.join(timeout=60)

    failures = [(status, answer) for status, answer in answers if status != 200]
    assert failures == [], f"{failures[:5]}\ngunicorn log:\n{gunicorn.output()[-3000:]}"
    assert all(answer["status"] == "stored" for _, answer in answers)
    assert "deadlock" not in gunicorn.output().lower()
    assert sender_errors == []
    assert ReceivedNotification.objects.count() == NOTIFICATIONS
    assert sum(answer["older_than_stored"] for _, answer in answers) > 0, (
        "some changes arrived after a newer one for their key"
    )
    assert calls_while_pushing > 0, "the sender sent while notifications arrived"

    final_profile = get_profile(profile.name)
    for _ in range(5):
        run_pass(final_profile, "price")
        run_pass(final_profile, "inventory")
    assert not Message.objects.exclude(status__in=[Status.SENT, Status.SUPERSEDED]).exists()

    prices, quantities = newest_values(bodies, profile)
    assert {sku: magento.price_of(sku) for sku in prices} == prices
    assert {sku: magento.quantity_of(sku) for sku in quantities} == quantities
