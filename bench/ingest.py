"""Ingest benchmark: the push-notification receiver under gunicorn, on PostgreSQL.

`gunicorn connector.wsgi --workers 4` serves the connector against the benchmark's own
database; 8 sender threads (one `requests.Session` each) post `MC-Inventory` push
notifications of 100 rows each (unique Ids, growing TimeStamps, SKUs drawn from a pool, two
warehouses mapped to one source) to `/acumatica/push/default/` with the profile's push
secret in `X-Connector-Secret`. Before, every SKU of the pool gets a key state (as on a
connector that has run a while) and the tables are ANALYZEd; a few notifications per sender
warm the workers up.

Reported: records/s stored (rows in the timed notifications / wall time) and the latency of
a POST (p50, p99). Targets: ≥ 5,000 records/s, p99 < 250 ms.
Checked: every POST answered 200 "stored", one received-notification row per Id, one pending
message per key, and every (SKU, warehouse) holds the quantity of its newest notification.

    python bench/ingest.py                 # 2,000 notifications (200,000 records), 8 senders
    python bench/ingest.py --quick         # 120 notifications: the CI smoke run

PostgreSQL only: `<name>_bench_ingest` next to DATABASE_URL's database (default
postgres://postgres@127.0.0.1:5432/connector).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field

from common import (
    ChildProcess,
    Column,
    Problems,
    Table,
    Target,
    add_common_arguments,
    append_results,
    child_environment,
    database_label,
    drop_bench_database,
    free_port,
    percentile,
    port_answers,
    print_targets,
    remove_work_folder,
    setup_django,
    should_record,
    use_bench_database,
    wait_for,
    work_folder,
)

ROWS_PER_NOTIFICATION = 100
WAREHOUSES = ("MAIN", "EAST")  # the default profile maps every warehouse ('*') to `default`
FIRST_TIMESTAMP = 638465233453014192
TARGET_RECORDS_PER_SECOND = 5_000
TARGET_P99_MS = 250


@dataclass
class Notification:
    body: bytes
    timestamp: int
    rows: list[tuple[str, str, int]]


@dataclass
class Sent:
    """What the senders saw, shared between their threads."""

    latencies_ms: list[float] = field(default_factory=list)
    answers: dict[int, int] = field(default_factory=dict)
    wrong_answers: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def build_notifications(count: int, skus: int, seed: int) -> list[Notification]:
    rng = random.Random(seed)
    pool = [(f"IN{number:06d}", warehouse) for number in range(skus) for warehouse in WAREHOUSES]
    notifications = []
    for number in range(count):
        timestamp = FIRST_TIMESTAMP + number * 10_000
        rows = [(sku, warehouse, rng.randint(0, 500))
                for sku, warehouse in rng.sample(pool, ROWS_PER_NOTIFICATION)]
        body = {
            "Inserted": [{"InventoryID": sku, "Warehouse": warehouse, "QtyAvailable": quantity}
                         for sku, warehouse, quantity in rows],
            "Deleted": [],
            "Query": "MC-Inventory",
            "CompanyId": "MyStore",
            "Id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "TimeStamp": timestamp,
            "AdditionalInfo": {"PXPerformanceInfoStartTime": "03/20/2025 09:22:24"},
        }
        notifications.append(Notification(json.dumps(body).encode(), timestamp, rows))
    return notifications


def seed_key_states(skus: int) -> None:
    """Every SKU of the pool has changed before (a running connector's key state), then
    ANALYZE: the timed run measures the steady state, not a planner that still believes the
    tables are empty."""
    from django.db import connection

    from message_queue.models import KeyState

    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {KeyState._meta.db_table} (profile_id, entity, key, source_ts, "
            "warehouse_quantities, warehouse_timestamps, updated_at) "
            "SELECT p.id, 'inventory', 'IN' || lpad(i::text, 6, '0') || '|default', 0, "
            "'{}'::jsonb, '{}'::jsonb, now() "
            "FROM generate_series(0, %s - 1) AS series(i), setup_params_profile p "
            "WHERE p.name = 'default'",
            [skus],
        )
        cursor.execute("ANALYZE")


def post_all(url: str, secret: str, notifications: list[Notification], senders: int,
             sent: Sent) -> float:
    """`senders` threads take the next notification until none is left; the wall time."""
    import requests

    upcoming = iter(notifications)
    take = threading.Lock()

    def sender() -> None:
        session = requests.Session()
        session.headers.update({"X-Connector-Secret": secret,
                                "Content-Type": "application/json"})
        latencies, answers, wrong = [], {}, []
        try:
            while True:
                with take:
                    notification = next(upcoming, None)
                if notification is None:
                    break
                started = time.perf_counter()
                response = session.post(url, data=notification.body, timeout=60)
                latencies.append((time.perf_counter() - started) * 1000)
                answers[response.status_code] = answers.get(response.status_code, 0) + 1
                if response.status_code != 200 or response.json().get("status") != "stored":
                    wrong.append(f"{response.status_code} {response.text[:200]}")
        finally:
            session.close()
            with sent.lock:
                sent.latencies_ms += latencies
                sent.wrong_answers += wrong
                for status, count in answers.items():
                    sent.answers[status] = sent.answers.get(status, 0) + count

    threads = [threading.Thread(target=sender, name=f"sender-{n}") for n in range(senders)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def check_stored(notifications: list[Notification], problems: Problems) -> None:
    """One received row per Id, one pending message per key, the newest quantity per
    (SKU, warehouse) in the key state."""
    from message_queue.models import KeyState, Message, ReceivedNotification

    received = ReceivedNotification.objects.count()
    problems.check(received == len(notifications),
                   f"{received} notifications recorded, {len(notifications)} posted")
    newest: dict[tuple[str, str], tuple[int, int]] = {}
    for notification in notifications:
        for sku, warehouse, quantity in notification.rows:
            known = newest.get((sku, warehouse))
            if known is None or known[0] < notification.timestamp:
                newest[(sku, warehouse)] = (notification.timestamp, quantity)
    keys = {f"{sku}|default" for sku, _ in newest}
    pending = Message.objects.filter(status="pending").count()
    problems.check(pending == len(keys) == Message.objects.count(),
                   f"{pending} pending messages ({Message.objects.count()} in all) for "
                   f"{len(keys)} keys")
    wrong = []
    for key, quantities in KeyState.objects.values_list("key", "warehouse_quantities"):
        sku = key.split("|")[0]
        for warehouse in WAREHOUSES:
            expected = newest.get((sku, warehouse))
            if expected is not None and quantities.get(warehouse) != expected[1]:
                wrong.append(f"{sku} {warehouse}: {quantities.get(warehouse)}, expected "
                             f"{expected[1]}")
    problems.check(not wrong, f"{len(wrong)} (SKU, warehouse) not at their newest quantity, "
                   f"e.g. {wrong[:3]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser, "120 notifications of 100 rows (CI)")
    parser.add_argument("--notifications", type=int, help="timed notifications (2,000)")
    parser.add_argument("--senders", type=int, default=8)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers (4)")
    parser.add_argument("--skus", type=int, default=20_000,
                        help="SKUs the rows are drawn from (20,000; two warehouses each)")
    parser.add_argument("--warmup", type=int, default=2,
                        help="untimed notifications per sender first (2)")
    parser.add_argument("--seed", type=int, default=8)
    arguments = parser.parse_args()
    count = arguments.notifications or (120 if arguments.quick else 2_000)

    database = use_bench_database("bench_ingest", postgresql_only=True)
    setup_django()
    from setup_params.models import get_profile

    print(f"database: {database_label(database)}")
    secret = get_profile().push_secret
    seed_key_states(arguments.skus)
    warmup = arguments.warmup * arguments.senders
    notifications = build_notifications(warmup + count, arguments.skus, arguments.seed)

    folder = work_folder("ingest")
    port = free_port()
    gunicorn = ChildProcess(
        [sys.executable, "-m", "gunicorn", "connector.wsgi", "--workers",
         str(arguments.workers), "--bind", f"127.0.0.1:{port}", "--timeout", "120"],
        child_environment(ALLOWED_HOSTS="127.0.0.1", DEBUG="0", LOG_LEVEL="WARNING",
                          CONNECTOR_VAR_DIR=str(folder)),
        folder / "gunicorn.log",
    )
    url = f"http://127.0.0.1:{port}/acumatica/push/default/"
    sent, warm = Sent(), Sent()
    try:
        wait_for(lambda: port_answers(port) or not gunicorn.alive, 60, "gunicorn to listen")
        if not gunicorn.alive:
            print(gunicorn.output(), file=sys.stderr)
            return 1
        post_all(url, secret, notifications[:warmup], arguments.senders, warm)
        seconds = post_all(url, secret, notifications[warmup:], arguments.senders, sent)
    finally:
        gunicorn.stop()

    records = count * ROWS_PER_NOTIFICATION
    rate = records / seconds
    p50, p99 = percentile(sent.latencies_ms, 0.5), percentile(sent.latencies_ms, 0.99)
    table = Table([
        Column("senders", 8), Column("workers", 8), Column("notifications", 14),
        Column("records", 9), Column("seconds", 9, "{:.2f}"), Column("records/s", 11, "{:,.0f}"),
        Column("p50 ms", 8, "{:.1f}"), Column("p99 ms", 8, "{:.1f}"),
        Column("max ms", 8, "{:.1f}"),
    ])
    table.row(arguments.senders, arguments.workers, count, records, seconds, rate, p50, p99,
              max(sent.latencies_ms))
    problems = Problems()
    for label, outcome in (("warm-up", warm), ("timed", sent)):
        problems.check(not outcome.wrong_answers,
                       f"{label}: {len(outcome.wrong_answers)} POSTs not stored, e.g. "
                       f"{outcome.wrong_answers[:3]}")
    check_stored(notifications, problems)
    targets = print_targets([
        Target(f"≥ {TARGET_RECORDS_PER_SECOND:,} records/s", rate >= TARGET_RECORDS_PER_SECOND,
               f"{rate:,.0f}"),
        Target(f"p99 < {TARGET_P99_MS} ms", p99 < TARGET_P99_MS, f"{p99:.0f} ms"),
    ])
    if should_record(arguments):
        append_results("Ingest", [table], [
            f"gunicorn connector.wsgi --workers {arguments.workers} (sync), "
            f"{arguments.senders} sender threads, {ROWS_PER_NOTIFICATION} rows a notification "
            f"from {arguments.skus:,} SKUs × {len(WAREHOUSES)} warehouses, "
            f"{warmup} warm-up notifications first; database {database_label(database)}",
            *targets,
        ])
    drop_bench_database()
    remove_work_folder(folder, problems)
    return problems.exit_status()


if __name__ == "__main__":
    sys.exit(main())
