"""Drain benchmark: the real pass function against the Magento simulator, versus the floor.

The floor is the same HTTP requests (same bodies, same count) sent from a bare
`requests.Session` loop with no database, against the same simulator in the same run.

    python bench/drain.py                  # 100,000 records per entity, 0 and 20 ms latency
    python bench/drain.py --quick          # 2,000 records, 0 ms: the CI smoke run
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/connector python bench/drain.py

It uses its own database (`<name>_bench` on PostgreSQL, a temporary file on SQLite).
Without `--quick` it appends its figures to bench/RESULTS.md (`--no-record`: print only).
"""

from __future__ import annotations

import argparse
import math
import sys
import time

from common import (
    Column,
    Problems,
    Table,
    add_common_arguments,
    append_results,
    database_label,
    setup_django,
    should_record,
    use_bench_database,
)


def seed(profile, entity: str, count: int) -> list[str]:
    from django.utils import timezone

    from message_queue.models import KeyState, Message

    now = timezone.now()
    skus = [f"BENCH{number:07d}" for number in range(count)]
    if entity == "price":
        messages = [
            Message(profile=profile, entity=entity, key=f"{sku}|0", sku=sku,
                    payload={"sku": sku, "price": 9.99, "store_id": 0}, created_at=now,
                    next_attempt_at=now, updated_at=now)
            for sku in skus
        ]
    else:
        messages = [
            Message(profile=profile, entity=entity, key=f"{sku}|default", sku=sku,
                    payload={"sku": sku, "source_code": "default", "warehouses": {"MAIN": 5}},
                    created_at=now, next_attempt_at=now, updated_at=now)
            for sku in skus
        ]
        KeyState.objects.bulk_create(
            [KeyState(profile=profile, entity=entity, key=f"{sku}|default", source_ts=1,
                      warehouse_quantities={"MAIN": 5}, warehouse_timestamps={"MAIN": 1})
             for sku in skus],
            batch_size=5000,
        )
    Message.objects.bulk_create(messages, batch_size=5000)
    return skus


def measure(entity: str, records: int, latency_ms: float, batch: int, threshold: int) -> dict:
    import requests

    from message_queue.models import Attempt, KeyState, Message, Status
    from message_queue.processing import run_pass
    from sandbox.magento import DEFAULT_TOKEN, MagentoSimulator
    from sandbox.server import serve
    from setup_params.models import Profile, get_profile

    Message.objects.all().delete()
    KeyState.objects.all().delete()
    Attempt.objects.all().delete()
    simulator = MagentoSimulator()
    with serve(simulator) as url:
        profile = get_profile()
        magento = profile.magento_settings
        magento.magento_url, magento.token = url, DEFAULT_TOKEN
        magento.save()
        queue = profile.queue_settings
        queue.batch_count, queue.threshold_count = batch, threshold
        queue.save()
        Profile.objects.filter(pk=profile.pk).update(state=Profile.State.ACTIVE)
        skus = seed(profile, entity, records)
        for sku in skus:
            simulator.add_product(sku, price=1.0, sources={"default": 0})
        simulator.latency_ms = latency_ms
        simulator.reset_log()

        started = time.perf_counter()
        while Message.objects.filter(status=Status.PENDING).exists():
            run_pass(get_profile(), entity)
        connector_seconds = time.perf_counter() - started

        calls = simulator.requests
        unsent = Message.objects.exclude(status=Status.SENT).count()
        path = calls[0].path
        bodies = [call.json_body for call in calls]
        simulator.reset_log()
        session = requests.Session()
        session.headers.update({"Authorization": f"Bearer {DEFAULT_TOKEN}"})
        started = time.perf_counter()
        for body in bodies:
            session.post(url + path, json=body, timeout=30).raise_for_status()
        floor_seconds = time.perf_counter() - started
        session.close()
    return {
        "entity": entity,
        "records": records,
        "latency_ms": latency_ms,
        "calls": len(bodies),
        "expected_calls": math.ceil(records / batch),
        "unsent": unsent,
        "connector_s": connector_seconds,
        "floor_s": floor_seconds,
        "ratio": connector_seconds / floor_seconds if floor_seconds else float("inf"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser, "2,000 records at 0 ms (CI)")
    parser.add_argument("--records", type=int)
    parser.add_argument("--entity", choices=["price", "inventory", "both"], default="both")
    parser.add_argument("--latency-ms", type=float, nargs="+")
    parser.add_argument("--batch-count", type=int, default=100)
    parser.add_argument("--threshold-count", type=int, default=25)
    arguments = parser.parse_args()
    records = arguments.records or (2000 if arguments.quick else 100_000)
    latencies = arguments.latency_ms or ([0.0] if arguments.quick else [0.0, 20.0])
    entities = ["price", "inventory"] if arguments.entity == "both" else [arguments.entity]

    database = use_bench_database()
    setup_django()

    print(f"database: {database_label(database)}")
    table = Table([
        Column("entity", 10, align="<"), Column("records", 9), Column("latency", 9, "{:.0f}ms"),
        Column("calls", 7), Column("connector s", 13, "{:.2f}"), Column("floor s", 9, "{:.2f}"),
        Column("ratio", 7, "{:.2f}"),
    ])
    problems = Problems()
    for entity in entities:
        for latency in latencies:
            row = measure(entity, records, latency, arguments.batch_count,
                          arguments.threshold_count)
            table.row(row["entity"], row["records"], row["latency_ms"], row["calls"],
                      row["connector_s"], row["floor_s"], row["ratio"])
            problems.check(row["calls"] == row["expected_calls"],
                           f"{entity}: {row['calls']} calls, expected {row['expected_calls']}")
            problems.check(not row["unsent"], f"{entity}: {row['unsent']} messages not sent")
    if should_record(arguments):
        append_results("Drain", [table], [
            f"batch count {arguments.batch_count}, threshold count "
            f"{arguments.threshold_count}; database {database_label(database)}",
            "ratio = connector seconds / floor seconds (the same requests from a bare "
            "requests.Session loop, no database)",
        ])
    return problems.exit_status()


if __name__ == "__main__":
    sys.exit(main())
