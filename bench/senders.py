"""Sender-scaling benchmark: 1, 2 and 4 senders as real Celery workers, on PostgreSQL.

Celery workers (`python -m celery -A connector worker -Q processors --concurrency 1
--without-gossip --without-mingle`, as many as the largest sender count) run against the
benchmark's own database and a private `redis-server`. For each sender count N: a backlog of
pending price messages is loaded, the profile's queue settings get senders = N, and the task
`message_queue.tasks.run_processor` ["default", "price"] is sent N times, as beat would; each
run holds one of the N sender slots and claims with SKIP LOCKED. Magento (the simulator in
this process) answers after 20 ms.

Reported per sender count: records/s from the tasks' dispatch until no message is pending or
processing, the workers that took part, and the speed-up over one sender. Target: ≥ 3× at 4
senders. Checked: every message sent, and no record reached Magento twice.

    python bench/senders.py                # 20,000 messages a round, check process time 20 s
    python bench/senders.py --quick        # 600 messages a round: the CI smoke run

PostgreSQL only: `<name>_bench_senders` next to DATABASE_URL's database (default
postgres://postgres@127.0.0.1:5432/connector).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from pathlib import Path

from common import (
    ChildProcess,
    Column,
    PrivateRedis,
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
    print_targets,
    remove_work_folder,
    setup_django,
    should_record,
    use_bench_database,
    wait_for,
    work_folder,
)

TARGET_SPEEDUP = 3.0
TASK = "message_queue.tasks.run_processor"
RECEIVED_LINE = f"Task {TASK}["


def start_workers(count: int, folder: Path, broker_url: str) -> list[ChildProcess]:
    return [
        ChildProcess(
            [sys.executable, "-m", "celery", "-A", "connector", "worker", "-Q", "processors",
             "--concurrency", "1", "--without-gossip", "--without-mingle", "--loglevel", "INFO",
             "-n", f"bench-sender-{number}@%h"],
            child_environment(CELERY_BROKER_URL=broker_url, DEBUG="0", LOG_LEVEL="INFO",
                              CONNECTOR_VAR_DIR=str(folder)),
            folder / f"worker-{number}.log",
        )
        for number in range(count)
    ]


def wait_until_ready(workers: list[ChildProcess]) -> None:
    for worker in workers:
        wait_for(lambda worker=worker: " ready." in worker.output() or not worker.alive, 120,
                 "a Celery worker to be ready")
        if not worker.alive:
            raise RuntimeError(f"a Celery worker stopped:\n{worker.output()[-3000:]}")


def task_lines(worker: ChildProcess) -> int:
    """How many runs this worker has received so far (its log says so at INFO)."""
    return sum(1 for line in worker.output().splitlines()
               if RECEIVED_LINE in line and line.rstrip().endswith("received"))


def measure(senders: int, records: int, workers: list[ChildProcess], simulator,
            check_process_time: int, problems: Problems) -> dict:
    from django.utils import timezone

    from connector.celery import app
    from message_queue.models import Message, SenderSlot, Status
    from setup_params.models import get_profile

    profile = get_profile()
    prefix = f"SN{senders}-"
    load_pending_messages(profile.pk, "price", records, prefix=prefix)
    for number in range(1, records + 1):
        simulator.add_product(f"{prefix}{number:07d}", price=1.0)
    queue = profile.queue_settings
    queue.senders = senders
    queue.save(update_fields=["senders"])
    simulator.reset_log()
    received_before = [task_lines(worker) for worker in workers]

    started = time.perf_counter()
    with app.connection_for_write() as connection:
        for _ in range(senders):
            app.send_task(TASK, args=[profile.name, "price"], queue="processors",
                          connection=connection)
    unsettled = Message.objects.filter(entity="price",
                                       status__in=[Status.PENDING, Status.PROCESSING])
    wait_for(lambda: not unsettled.exists(), 600, f"{records:,} messages to be sent",
             interval=0.05)
    seconds = time.perf_counter() - started

    # The runs go on until the check process time is up; the next round needs their slots.
    wait_for(lambda: not SenderSlot.objects.filter(expires_at__gt=timezone.now()).exists(),
             check_process_time + 60, "the runs to end and free their sender slots",
             interval=0.2)
    took_part = sum(task_lines(worker) > before
                    for worker, before in zip(workers, received_before, strict=True))
    sent = Counter(row["sku"] for call in simulator.calls("/base-prices")
                   for row in call.json_body["prices"])
    duplicates = sum(times - 1 for times in sent.values() if times > 1)
    unsent = Message.objects.filter(sku__startswith=prefix).exclude(status=Status.SENT).count()
    problems.check(duplicates == 0, f"{senders} senders: {duplicates} records sent twice")
    problems.check(len(sent) == records and not unsent,
                   f"{senders} senders: Magento got {len(sent):,} of {records:,} SKUs, "
                   f"{unsent} messages not sent")
    problems.check(took_part == senders,
                   f"{senders} senders: {took_part} workers received a run")
    return {"senders": senders, "records": records, "seconds": seconds,
            "rate": records / seconds, "calls": len(simulator.calls("/base-prices")),
            "duplicates": duplicates, "workers": took_part}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser, "600 messages a round, check process time 1 s (CI)")
    parser.add_argument("--records", type=int, help="messages a round (20,000)")
    parser.add_argument("--senders", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--batch-count", type=int, default=20)
    parser.add_argument("--threshold-count", type=int, default=25)
    parser.add_argument("--check-process-time", type=int,
                        help="seconds each run keeps looking (20; --quick 1)")
    arguments = parser.parse_args()
    records = arguments.records or (600 if arguments.quick else 20_000)
    check_process_time = arguments.check_process_time or (1 if arguments.quick else 20)

    folder = work_folder("senders")
    redis = PrivateRedis(folder)
    os.environ["CELERY_BROKER_URL"] = redis.url
    workers: list[ChildProcess] = []
    problems = Problems()
    try:
        database = use_bench_database("bench_senders", postgresql_only=True)
        # The workers boot while this process migrates: they touch the database only when
        # a run arrives.
        started = time.perf_counter()
        workers = start_workers(max(arguments.senders), folder, redis.url)
        setup_django()
        from sandbox.magento import MagentoSimulator
        from sandbox.server import serve

        print(f"database: {database_label(database)}; broker: a private redis-server")
        wait_until_ready(workers)
        print(f"{len(workers)} Celery workers ready in {time.perf_counter() - started:.1f} s")
        simulator = MagentoSimulator()
        simulator.latency_ms = arguments.latency_ms
        with serve(simulator) as url:
            configure_profile(url, batch_count=arguments.batch_count,
                              threshold_count=arguments.threshold_count,
                              check_process_time=check_process_time, process_sleep_time=1)
            table = Table([
                Column("senders", 8), Column("records", 9), Column("calls", 7),
                Column("seconds", 9, "{:.2f}"), Column("records/s", 11, "{:,.0f}"),
                Column("speed-up", 10, "{:.2f}×"), Column("workers", 9),
                Column("duplicates", 12),
            ])
            rates = {}
            for senders in arguments.senders:
                row = measure(senders, records, workers, simulator, check_process_time,
                              problems)
                rates[senders] = row["rate"]
                base = rates.get(min(arguments.senders), row["rate"])
                table.row(senders, records, row["calls"], row["seconds"], row["rate"],
                          row["rate"] / base, row["workers"], row["duplicates"])
        targets = []
        if 1 in rates and 4 in rates:
            speedup = rates[4] / rates[1]
            targets.append(Target(f"≥ {TARGET_SPEEDUP:g}× at 4 senders vs 1",
                                  speedup >= TARGET_SPEEDUP, f"{speedup:.2f}×"))
        target_lines = print_targets(targets)
        if should_record(arguments):
            append_results("Sender scaling", [table], [
                f"{records:,} price messages a round, batch count {arguments.batch_count}, "
                f"threshold {arguments.threshold_count}, Magento latency "
                f"{arguments.latency_ms:g} ms, check process time {check_process_time} s; "
                f"{len(workers)} workers started once, N runs sent per round; database "
                f"{database_label(database)}",
                "records/s: from sending the N tasks until no message is pending or "
                "processing",
                *target_lines,
            ])
    finally:
        for worker in workers:
            worker.stop()
        redis.stop()
    drop_bench_database()
    remove_work_folder(folder, problems)
    return problems.exit_status()


if __name__ == "__main__":
    sys.exit(main())
