"""Coalescing benchmark: changes keep arriving while passes run; how much does coalescing save?

Push notifications as Acumatica sends them (a transaction's rows each, Deleted + Inserted
pairs, growing TimeStamps, a few delivered late and a few delivered twice) go through the
receiver's own two steps, `parse_notification` and `store_notification`, at a steady rate.
Meanwhile a thread runs `run_pass` every few seconds against the Magento simulator (served by
`sandbox.server.serve`). Popular SKUs change more often than others (Zipf weights).

Reported per entity: the HTTP calls Magento got and the records they carried, against the
same passes without coalescing (every change its own record: per pass, the changes that
arrived since the one before, sent by the threshold/batch rule).
Checked: every SKU ends at its newest value in the simulator's catalog, no SKU is ever sent
an older value after a newer one, and nothing is left pending or failed.

    python bench/coalesce.py               # 100,000 changes over 5,000 SKUs, prices and stock
    python bench/coalesce.py --quick       # 4,000 changes over 200 SKUs: the CI smoke run
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/connector python bench/coalesce.py

Its own database: `<name>_bench_coalesce` on PostgreSQL, a temporary SQLite file otherwise.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import random
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from common import (
    Column,
    Problems,
    Table,
    add_common_arguments,
    append_results,
    configure_profile,
    database_label,
    drop_bench_database,
    setup_django,
    should_record,
    use_bench_database,
)

FIRST_TIMESTAMP = 638465233453014192  # .NET ticks; each notification one millisecond later
TICKS_PER_NOTIFICATION = 10_000
INITIAL_PRICE = 0.5  # below every price the changes carry (they start at 1.00)
WAREHOUSE = "MAIN"


@dataclass
class Delivery:
    """One POST as Acumatica would make it: the body, and what it says per SKU."""

    entity: str
    body: bytes
    sequence: int  # the TimeStamp's order; also encoded in every value it carries
    values: dict[str, float]
    repeat: bool = False


@dataclass
class Arrivals:
    """What the ingest side has stored so far, per entity (read by the pass thread)."""

    changes: Counter = field(default_factory=Counter)
    duplicates: int = 0
    done: threading.Event = field(default_factory=threading.Event)


@dataclass
class PassLog:
    entity: str
    arrived: int  # changes stored since this entity's previous pass started
    calls: int
    sent: int
    seconds: float


def zipf_weights(count: int, exponent: float) -> list[float]:
    return [1 / (rank ** exponent) for rank in range(1, count + 1)]


def price_text(sequence: int, sku_number: int) -> str:
    """A price that says which change it came from: its whole part is the sequence."""
    return f"{sequence}.{sku_number % 100:02d}"


def build_deliveries(arguments, skus: list[str], entities: list[str]) -> list[Delivery]:
    """The notifications in TimeStamp order, then a few moved later and a few repeated."""
    rng = random.Random(arguments.seed)
    weights = zipf_weights(len(skus), arguments.skew)
    numbers = {sku: number for number, sku in enumerate(skus)}
    last_value: dict[tuple[str, str], float | int] = {}
    deliveries: list[Delivery] = []
    changes_left = arguments.changes
    for sequence in itertools.count(1):
        if changes_left <= 0:
            break
        entity = rng.choice(entities)
        size = min(rng.randint(1, arguments.max_rows), changes_left)
        chosen: set[str] = set()
        while len(chosen) < size:
            chosen.update(rng.choices(skus, weights, k=size - len(chosen)))
        inserted, deleted, values = [], [], {}
        for sku in sorted(chosen):
            old = last_value.get((entity, sku))
            if entity == "price":
                new = float(price_text(sequence, numbers[sku]))
                inserted.append({"InventoryID": sku + " ", "DefaultPrice": new,
                                 "Description": f"Item {sku}"})
                if old is not None:
                    deleted.append({"InventoryID": sku, "DefaultPrice": old,
                                    "Description": f"Item {sku}"})
                values[sku] = new
            else:
                new = sequence
                inserted.append({"InventoryID": sku, "Warehouse": WAREHOUSE + " ",
                                 "QtyAvailable": new, "QtyOnHand": new + 3})
                if old is not None:
                    deleted.append({"InventoryID": sku, "Warehouse": WAREHOUSE,
                                    "QtyAvailable": old, "QtyOnHand": old + 3})
                values[sku] = float(new)
            last_value[(entity, sku)] = new
        body = {
            "Inserted": inserted,
            "Deleted": deleted,
            "Query": "MC-Prices" if entity == "price" else "MC-Inventory",
            "CompanyId": "MyStore",
            "Id": f"bench-{sequence:012d}",
            "TimeStamp": FIRST_TIMESTAMP + sequence * TICKS_PER_NOTIFICATION,
            "AdditionalInfo": {"PXPerformanceInfoStartTime": "03/20/2025 09:22:24"},
        }
        deliveries.append(Delivery(entity, json.dumps(body).encode(), sequence, values))
        changes_left -= size
    # Acumatica delivers at least once and not always in order.
    for index in rng.sample(range(len(deliveries)), int(len(deliveries) * arguments.late)):
        delivery = deliveries.pop(index)
        deliveries.insert(min(len(deliveries), index + rng.randint(5, 50)), delivery)
    for index in sorted(rng.sample(range(len(deliveries)), int(len(deliveries) *
                                                                arguments.repeats)),
                        reverse=True):
        original = deliveries[index]
        repeat = Delivery(original.entity, original.body, original.sequence, original.values,
                          repeat=True)
        deliveries.insert(min(len(deliveries), index + rng.randint(1, 100)), repeat)
    return deliveries


def newest_values(deliveries: list[Delivery]) -> dict[tuple[str, str], tuple[int, float]]:
    newest: dict[tuple[str, str], tuple[int, float]] = {}
    for delivery in deliveries:
        for sku, value in delivery.values.items():
            key = (delivery.entity, sku)
            if key not in newest or newest[key][0] < delivery.sequence:
                newest[key] = (delivery.sequence, value)
    return newest


def ingest(deliveries: list[Delivery], arrivals: Arrivals, rate: float) -> float:
    """Store each notification as the receiver does, at `rate` changes a second at most."""
    from django.db import connections

    from message_queue.ingest import parse_notification, store_notification
    from setup_params.models import get_profile

    profile = get_profile()
    started = time.perf_counter()
    stored = 0
    try:
        for delivery in deliveries:
            if rate:
                ahead = stored / rate - (time.perf_counter() - started)
                if ahead > 0:
                    time.sleep(ahead)
            result = store_notification(profile, parse_notification(delivery.body))
            if result.duplicate:
                arrivals.duplicates += 1
            else:
                arrivals.changes[delivery.entity] += len(delivery.values)
                stored += len(delivery.values)
    finally:
        arrivals.done.set()
        connections.close_all()
    return time.perf_counter() - started


def run_passes(entities: list[str], arrivals: Arrivals, interval: float,
               log: list[PassLog], failures: list[BaseException]) -> None:
    """A pass per entity every `interval` seconds; after the last arrival, until empty."""
    from django.db import connections

    from message_queue.models import Message, Status
    from message_queue.processing import run_pass
    from setup_params.models import get_profile

    seen = Counter()
    try:
        while True:
            started = time.perf_counter()
            finished = arrivals.done.is_set()
            for entity in entities:
                arrived = arrivals.changes[entity]
                pass_started = time.perf_counter()
                report = run_pass(get_profile(), entity)
                log.append(PassLog(entity, arrived - seen[entity], report.calls, report.sent,
                                   time.perf_counter() - pass_started))
                seen[entity] = arrived
            if finished and not Message.objects.filter(
                status__in=[Status.PENDING, Status.PROCESSING]
            ).exists():
                return
            time.sleep(max(0.0, interval - (time.perf_counter() - started)))
    except BaseException as error:  # the main thread reports it
        failures.append(error)
    finally:
        connections.close_all()


def calls_by_rule(records: int, threshold: int, batch: int) -> int:
    """DESIGN.md section 5: one call a record up to the threshold, else batches."""
    return records if records <= threshold else math.ceil(records / batch)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser, "4,000 changes over 200 SKUs, a pass every 0.5 s (CI)")
    parser.add_argument("--changes", type=int, help="changes in all (default 100,000)")
    parser.add_argument("--skus", type=int, help="SKUs they fall on (default 5,000)")
    parser.add_argument("--entity", choices=["price", "inventory", "both"], default="both")
    parser.add_argument("--rate", type=float,
                        help="changes a second arriving (default 2,000; 0 = as fast as "
                        "they can be stored)")
    parser.add_argument("--pass-interval", type=float,
                        help="seconds between pass starts (default 5, the process sleep time)")
    parser.add_argument("--max-rows", type=int, default=20,
                        help="rows per notification: 1 to this many (default 20)")
    parser.add_argument("--skew", type=float, default=1.0,
                        help="Zipf exponent of how often each SKU changes (0 = uniform)")
    parser.add_argument("--late", type=float, default=0.01,
                        help="share of notifications delivered late (default 0.01)")
    parser.add_argument("--repeats", type=float, default=0.01,
                        help="share of notifications delivered twice (default 0.01)")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--batch-count", type=int, default=20)
    parser.add_argument("--threshold-count", type=int, default=25)
    parser.add_argument("--seed", type=int, default=8)
    arguments = parser.parse_args()
    quick = arguments.quick
    arguments.changes = arguments.changes or (4_000 if quick else 100_000)
    arguments.skus = arguments.skus or (200 if quick else 5_000)
    arguments.rate = arguments.rate if arguments.rate is not None else (
        3_000.0 if quick else 2_000.0)
    arguments.pass_interval = arguments.pass_interval or (0.5 if quick else 5.0)
    entities = ["price", "inventory"] if arguments.entity == "both" else [arguments.entity]

    database = use_bench_database("bench_coalesce")
    setup_django()
    from message_queue.models import Message
    from sandbox.magento import MagentoSimulator
    from sandbox.server import serve

    print(f"database: {database_label(database)}")
    skus = [f"CO{number:05d}" for number in range(arguments.skus)]
    deliveries = build_deliveries(arguments, skus, entities)
    newest = newest_values(deliveries)
    simulator = MagentoSimulator()
    for sku in skus:
        simulator.add_product(sku, price=INITIAL_PRICE, sources={"default": 0})
    simulator.latency_ms = arguments.latency_ms
    print(f"{arguments.changes:,} changes over {len(skus):,} SKUs in {len(deliveries):,} "
          f"notifications; {arguments.rate:,.0f} changes/s, a pass every "
          f"{arguments.pass_interval:g} s, batch count {arguments.batch_count}, threshold "
          f"{arguments.threshold_count}, Magento latency {arguments.latency_ms:g} ms")

    arrivals, log, failures = Arrivals(), [], []
    with serve(simulator) as url:
        configure_profile(url, batch_count=arguments.batch_count,
                          threshold_count=arguments.threshold_count)
        passes = threading.Thread(
            target=run_passes,
            args=(entities, arrivals, arguments.pass_interval, log, failures),
            name="passes",
        )
        started = time.perf_counter()
        passes.start()
        ingest_seconds = ingest(deliveries, arrivals, arguments.rate)
        passes.join()
        total_seconds = time.perf_counter() - started
        calls = simulator.requests

    problems = Problems()
    for error in failures:
        problems.append(f"the pass thread stopped: {error!r}")
    endpoint_of = {"price": "/V1/products/base-prices", "inventory": "/V1/inventory/source-items"}
    table = Table([
        Column("entity", 10, align="<"), Column("changes", 9), Column("passes", 8),
        Column("calls", 8), Column("records", 9), Column("calls w/o", 10),
        Column("records w/o", 13), Column("calls saved", 13), Column("records saved", 15),
    ])
    resent = Counter()
    for entity in entities:
        sent_values: dict[str, list[float]] = defaultdict(list)
        entity_calls = 0
        for call in calls:
            if not call.path.endswith(endpoint_of[entity]):
                continue
            entity_calls += 1
            problems.check(call.status == 200, f"{entity}: Magento answered {call.status}")
            rows = call.json_body["prices" if entity == "price" else "sourceItems"]
            for row in rows:
                sent_values[row["sku"]].append(row["price" if entity == "price" else "quantity"])
        records = sum(len(values) for values in sent_values.values())
        entity_passes = [entry for entry in log if entry.entity == entity]
        plain_calls = sum(calls_by_rule(entry.arrived, arguments.threshold_count,
                                        arguments.batch_count) for entry in entity_passes)
        plain_records = arrivals.changes[entity]
        table.row(entity, plain_records, len(entity_passes), entity_calls, records, plain_calls,
                  plain_records, f"{1 - entity_calls / max(plain_calls, 1):.0%}",
                  f"{1 - records / max(plain_records, 1):.0%}")
        problems.check(sum(entry.sent for entry in entity_passes) == records,
                       f"{entity}: the passes report {sum(e.sent for e in entity_passes)} "
                       f"sent, Magento got {records}")
        wrong, out_of_order = [], []
        for sku in skus:
            expected = newest.get((entity, sku), (0, INITIAL_PRICE if entity == "price"
                                                  else 0.0))[1]
            final = (simulator.price_of(sku) if entity == "price"
                     else simulator.quantity_of(sku, "default"))
            if final != expected:
                wrong.append(f"{sku} is {final}, expected {expected}")
            sequences = [int(value) for value in sent_values.get(sku, [])]
            pairs = list(itertools.pairwise(sequences))
            if any(later < earlier for earlier, later in pairs):
                out_of_order.append(f"{sku} got {sequences}")
            resent[entity] += sum(later == earlier for earlier, later in pairs)
        problems.check(not wrong, f"{entity}: {len(wrong)} SKUs not at their newest value, "
                       f"e.g. {wrong[:3]}")
        problems.check(not out_of_order, f"{entity}: {len(out_of_order)} SKUs got an older "
                       f"value after a newer one, e.g. {out_of_order[:3]}")
        # A price message carries its own value, so two sends are two different prices.
        problems.check(entity != "price" or not resent[entity],
                       f"price: {resent[entity]} records sent a price the SKU already had")
    left = Counter(Message.objects.exclude(status__in=["sent", "superseded"])
                   .values_list("status", flat=True))
    problems.check(not left, f"messages left unsent: {dict(left)}")
    repeats = sum(delivery.repeat for delivery in deliveries)
    problems.check(arrivals.duplicates == repeats,
                   f"{arrivals.duplicates} notifications stored as repeats, {repeats} were")

    notes = [
        f"ingest {ingest_seconds:.1f} s ({arguments.changes / ingest_seconds:,.0f} changes/s "
        f"stored), everything sent {total_seconds:.1f} s after the first arrival; "
        f"{repeats} repeated and {int(len(deliveries) * arguments.late)} late notifications",
        "w/o = without coalescing: every change its own record, per pass the changes that "
        "arrived since the previous one, threshold/batch rule applied",
        f"slowest pass {max((entry.seconds for entry in log), default=0):.2f} s",
    ]
    if "inventory" in entities:
        notes.append(
            f"stock: {resent['inventory']} records repeated the quantity the SKU had just been "
            "sent (the freshest quantity goes when a batch is built, so a change that arrived "
            "while an older one was in flight is sent again with no news)"
        )
    for note in notes:
        print(note)
    if should_record(arguments):
        append_results("Coalescing", [table], [
            f"{arguments.changes:,} changes over {len(skus):,} SKUs (Zipf {arguments.skew:g}), "
            f"{len(deliveries):,} notifications of 1–{arguments.max_rows} rows, "
            f"{arguments.rate:,.0f} changes/s, a pass every {arguments.pass_interval:g} s, "
            f"batch count {arguments.batch_count}, threshold {arguments.threshold_count}, "
            f"latency {arguments.latency_ms:g} ms; database {database_label(database)}",
            *notes,
        ])
    drop_bench_database()
    return problems.exit_status()


if __name__ == "__main__":
    sys.exit(main())
