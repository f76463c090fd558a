"""Drain benchmark: the real pass function against the Magento simulator, versus the floor.

The floor is the same HTTP requests (same bodies, same count) sent from a bare
`requests.Session` loop with no database, against the same simulator in the same run.

    python bench/drain.py                  # 100,000 records per entity, 0 and 20 ms latency
    python bench/drain.py --quick          # 2,000 records, 0 ms: the CI smoke run
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/connector python bench/drain.py

It uses its own database (`<name>_bench` on PostgreSQL, a temporary file on SQLite).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))


def use_bench_database() -> str:
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith("postgres"):
        base, _, name = url.rpartition("/")
        bench_name = f"{name or 'connector'}_bench"
        import psycopg

        with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{bench_name}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{bench_name}"')
        os.environ["DATABASE_URL"] = f"{base}/{bench_name}"
    else:
        folder = tempfile.mkdtemp(prefix="connector-bench-")
        os.environ["DATABASE_URL"] = f"sqlite:///{folder}/bench.sqlite3"
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-" + "x" * 40)
    os.environ.setdefault(
        "CONNECTOR_ENCRYPTION_KEY", "YmVuY2gtb25seS1lbmNyeXB0aW9uLWtleS0zMmJ5dGU="
    )
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ["DJANGO_SETTINGS_MODULE"] = "connector.settings"
    return os.environ["DATABASE_URL"]


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
    parser.add_argument("--quick", action="store_true", help="2,000 records at 0 ms (CI)")
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
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from django.db import connection

    print(f"database: {connection.vendor} ({database.split('@')[-1]})")
    print(f"{'entity':<10}{'records':>9}{'latency':>9}{'calls':>7}{'connector s':>13}"
          f"{'floor s':>9}{'ratio':>7}")
    problems = []
    for entity in entities:
        for latency in latencies:
            row = measure(entity, records, latency, arguments.batch_count,
                          arguments.threshold_count)
            print(f"{row['entity']:<10}{row['records']:>9}{row['latency_ms']:>7.0f}ms"
                  f"{row['calls']:>7}{row['connector_s']:>13.2f}{row['floor_s']:>9.2f}"
                  f"{row['ratio']:>7.2f}")
            if row["calls"] != row["expected_calls"]:
                problems.append(f"{entity}: {row['calls']} calls, expected "
                                f"{row['expected_calls']}")
            if row["unsent"]:
                problems.append(f"{entity}: {row['unsent']} messages not sent")
    for problem in problems:
        print("PROBLEM:", problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
