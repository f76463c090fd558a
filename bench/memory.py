"""Memory benchmark: a worker's peak RSS while it drains a million-message backlog.

The backlog is loaded with one INSERT … SELECT; a child process (the worker) drains it with
the real `run_pass`, pass after pass, against the Magento simulator served by this process.
Every 0.5 s this process reads the child's VmRSS and VmHWM (its peak) from
/proc/<pid>/status, and how many records Magento has got.

Reported: RSS and peak RSS at 10 % of the backlog sent (100,000 of a million), at 25, 50,
75 % and at the end (the child's own last reading), with the records/s of each stretch.
Targets: peak < 250 MB, and flat: the peak at the end within 10 % of the peak at 10 %.
Checked: every message sent, Magento got every record once.

    python bench/memory.py                 # 1,000,000 price messages
    python bench/memory.py --quick         # 20,000: the CI smoke run
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/connector python bench/memory.py

Its own database: `<name>_bench_memory` on PostgreSQL (dropped at the end), a temporary SQLite
file otherwise.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import deque
from pathlib import Path

from common import (
    ChildProcess,
    Column,
    Problems,
    Table,
    Target,
    add_common_arguments,
    append_results,
    child_environment,
    configure_profile,
    database_label,
    drop_bench_database,
    load_pending_messages,
    memory_of,
    print_targets,
    remove_work_folder,
    setup_django,
    should_record,
    use_bench_database,
    without_secondary_indexes,
    work_folder,
)

TARGET_PEAK_MB = 250
TARGET_GROWTH = 0.10  # "flat": the end's peak at most 10 % above the peak at 10 %
SAMPLE_SECONDS = 0.5
CHECKPOINTS = (0.10, 0.25, 0.50, 0.75)
LOG_KEPT = 100


def light_simulator():
    """The Magento simulator for a million records: every SKU exists (no million-product
    catalog in this process), only the last requests are logged, records are counted."""
    from sandbox.magento import MagentoSimulator, Product

    class EveryProductExists(dict):
        def __init__(self) -> None:
            super().__init__()
            self.product = Product(price=1.0, sources={"default": 0.0})

        def get(self, sku, default=None):
            return self.product

    class CountingMagento(MagentoSimulator):
        def __init__(self) -> None:
            super().__init__()
            self._log = deque(maxlen=LOG_KEPT)
            self.catalog = EveryProductExists()
            self.records = 0

        def handle(self, method, path, headers, body):
            status, answer_headers, answer = super().handle(method, path, headers, body)
            if status == 200:
                with self._lock:
                    self.records += body.count(b'"sku"')  # one per price row or source item
            return status, answer_headers, answer

    return CountingMagento()


def drain_in_child(entity: str) -> int:
    """The worker: passes until nothing is pending, then its own last memory reading."""
    setup_django(migrate=False)
    from message_queue.models import Message, Status
    from message_queue.processing import run_pass
    from setup_params.models import get_profile

    started = time.perf_counter()
    passes = calls = sent = 0
    while Message.objects.filter(entity=entity, status=Status.PENDING).exists():
        report = run_pass(get_profile(), entity)
        passes, calls, sent = passes + 1, calls + report.calls, sent + report.sent
    print(json.dumps({"passes": passes, "calls": calls, "sent": sent,
                      "seconds": time.perf_counter() - started, **memory_of()}), flush=True)
    return 0


def megabytes(kilobytes: int) -> float:
    return kilobytes / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser, "20,000 messages (CI)")
    parser.add_argument("--messages", type=int, help="backlog size (1,000,000)")
    parser.add_argument("--entity", choices=["price", "inventory"], default="price")
    parser.add_argument("--batch-count", type=int, default=100)
    parser.add_argument("--threshold-count", type=int, default=25)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        return drain_in_child(arguments.entity)
    count = arguments.messages or (20_000 if arguments.quick else 1_000_000)

    database = use_bench_database("bench_memory")
    setup_django()
    from django.db import connection, connections

    from message_queue.models import Message, Status
    from sandbox.server import serve

    print(f"database: {database_label(database)}")
    problems = Problems()
    simulator = light_simulator()
    folder = work_folder("memory")
    samples: list[tuple[float, int, dict[str, int]]] = []
    try:
        with serve(simulator) as url:
            profile = configure_profile(url, batch_count=arguments.batch_count,
                                        threshold_count=arguments.threshold_count)
            started = time.perf_counter()
            if connection.vendor == "postgresql":
                with without_secondary_indexes(Message._meta.db_table):
                    load_pending_messages(profile.pk, arguments.entity, count, prefix="MEM")
            else:
                load_pending_messages(profile.pk, arguments.entity, count, prefix="MEM")
            print(f"loaded {count:,} pending {arguments.entity} messages in "
                  f"{time.perf_counter() - started:.1f} s")
            connections.close_all()
            worker = ChildProcess(
                [sys.executable, str(Path(__file__).resolve()), "--child", "--entity",
                 arguments.entity],
                child_environment(DEBUG="0", LOG_LEVEL="WARNING"),
                folder / "worker.log",
            )
            started = time.perf_counter()
            while worker.alive:
                try:
                    figures = memory_of(worker.pid)
                except (FileNotFoundError, ProcessLookupError):
                    break
                if figures:
                    samples.append((time.perf_counter() - started, simulator.records, figures))
                time.sleep(SAMPLE_SECONDS)
            worker.process.wait()
            worker.stop()
            seconds = time.perf_counter() - started
        output = worker.output().strip().splitlines()
        try:
            final = json.loads(output[-1])
        except (IndexError, ValueError):
            final = None
        if not problems.check(worker.process.returncode == 0 and final is not None,
                              f"the worker exited with {worker.process.returncode}: "
                              + "\n".join(output[-20:])):
            return problems.exit_status()

        table = Table([
            Column("records sent", 14), Column("share", 7), Column("seconds", 9, "{:.1f}"),
            Column("records/s", 11, "{:,.0f}"), Column("RSS MB", 9, "{:.1f}"),
            Column("peak MB", 9, "{:.1f}"),
        ])
        peaks = {}
        previous = (0.0, 0)  # records/s in the stretch since the row before
        for share in CHECKPOINTS:
            reached = next((sample for sample in samples if sample[1] >= share * count), None)
            if reached is None:
                table.row(f"{math.ceil(share * count):,}", f"{share:.0%}", "", "", "no sample",
                          "")
                continue
            moment, records, figures = reached
            peaks[share] = figures["VmHWM"]
            stretch = (f"{(records - previous[1]) / (moment - previous[0]):,.0f}"
                       if moment > previous[0] else "")  # one sample past two checkpoints
            table.row(f"{records:,}", f"{share:.0%}", moment, stretch,
                      megabytes(figures["VmRSS"]), megabytes(figures["VmHWM"]))
            previous = (moment, records)
        table.row(f"{simulator.records:,}", "end", seconds,
                  (simulator.records - previous[1]) / max(seconds - previous[0], 1e-9),
                  megabytes(final["VmRSS"]), megabytes(final["VmHWM"]))

        left = Message.objects.exclude(status=Status.SENT).count()
        problems.check(left == 0, f"{left} messages not sent")
        problems.check(simulator.records == count,
                       f"Magento got {simulator.records:,} records for {count:,} messages")
        problems.check(final["sent"] == count, f"the worker reports {final['sent']:,} sent")
        peak = megabytes(final["VmHWM"])
        targets = [Target(f"peak < {TARGET_PEAK_MB} MB", peak < TARGET_PEAK_MB, f"{peak:.0f} MB")]
        if CHECKPOINTS[0] in peaks:
            at_first = megabytes(peaks[CHECKPOINTS[0]])
            growth = peak / at_first - 1
            targets.append(Target(
                f"flat (peak at the end ≤ {TARGET_GROWTH:.0%} above the peak at "
                f"{CHECKPOINTS[0]:.0%})", growth <= TARGET_GROWTH,
                f"{at_first:.0f} → {peak:.0f} MB, {growth:+.0%}"))
        rate = count / final["seconds"]
        note = (f"{count:,} {arguments.entity} messages, batch count {arguments.batch_count}: "
                f"{final['passes']} passes, {final['calls']:,} calls, {final['seconds']:.0f} s "
                f"({rate:,.0f} records/s, {seconds:.0f} s with start-up); "
                f"{len(samples)} samples every {SAMPLE_SECONDS} s")
        print(note)
        target_lines = print_targets(targets)
        if should_record(arguments):
            append_results("Memory", [table], [
                note, f"database {database_label(database)}", *target_lines])
    finally:
        drop_bench_database()
    remove_work_folder(folder, problems)
    return problems.exit_status()


if __name__ == "__main__":
    sys.exit(main())
