"""Request slots (the concurrency level) across processes: file locks and Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from connector.acumatica import (
    AcumaticaBusy,
    AcumaticaClient,
    AcumaticaSettings,
    FileLockSlots,
    RedisSlots,
)
from sandbox.acumatica import DEFAULT_PASSWORD, AcumaticaSimulator
from sandbox.server import serve
from tests.helpers import PROJECT_DIR

LIMIT = 3
PROCESSES = 2
CALLERS_PER_PROCESS = 4  # 8 parallel callers in all
CALLS_PER_CALLER = 3  # each call: sign in, GET /entity, sign out

# One worker process: CALLERS_PER_PROCESS threads, each with its own client and slots object.
WORKER = """
import sys, threading
from connector.acumatica import AcumaticaClient, AcumaticaSettings, FileLockSlots, RedisSlots

url, kind, where, key, password, callers, calls = sys.argv[1:8]
errors = []

def slots():
    if kind == "file":
        return FileLockSlots(where, 3)
    return RedisSlots(where, key, 3, expire_seconds=30)

def work():
    settings = AcumaticaSettings(
        instance_url=url, tenant="MyStore", username="admin", password=password, timeout=10
    )
    client = AcumaticaClient(settings, slots=slots(), slot_timeout=60)
    try:
        for _ in range(int(calls)):
            client.list_endpoints()
    except Exception as error:
        errors.append(repr(error))

threads = [threading.Thread(target=work) for _ in range(int(callers))]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print("errors:", errors, flush=True)
sys.exit(1 if errors else 0)
"""

# Takes the only slot, says so, and waits to be killed.
HOLDER = """
import sys, time
from connector.acumatica import FileLockSlots, RedisSlots

kind, where, key, expire = sys.argv[1:5]
if kind == "file":
    slots = FileLockSlots(where, 1)
else:
    slots = RedisSlots(where, key, 1, expire_seconds=float(expire))
with slots.acquire(10):
    print("held", time.time(), flush=True)
    time.sleep(120)
"""


def python(script: str, *arguments: str) -> subprocess.Popen:
    environment = {**os.environ, "PYTHONPATH": str(PROJECT_DIR)}
    return subprocess.Popen(
        [sys.executable, "-c", script, *arguments],
        cwd=PROJECT_DIR,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture
def acumatica():
    simulator = AcumaticaSimulator(api_seats=100)
    simulator.latency_ms = 40  # long enough for requests to overlap
    with serve(simulator) as url:
        simulator.url = url
        yield simulator


@pytest.fixture
def redis_key(redis_url):
    import redis

    key = f"test:acumatica-slots:{uuid.uuid4().hex}"
    yield key
    redis.Redis.from_url(redis_url).delete(key)


def run_workers(acumatica, kind: str, where: str, key: str = "") -> None:
    processes = [
        python(
            WORKER,
            acumatica.url,
            kind,
            where,
            key,
            DEFAULT_PASSWORD,
            str(CALLERS_PER_PROCESS),
            str(CALLS_PER_CALLER),
        )
        for _ in range(PROCESSES)
    ]
    outputs = [process.communicate(timeout=120)[0] for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs


def start_holder(
    kind: str, where: str, key: str = "", expire: float = 0
) -> tuple[subprocess.Popen, float]:
    """A process holding the only slot, and when it took it (epoch seconds)."""
    holder = python(HOLDER, kind, where, key, str(expire))
    word, held_at = holder.stdout.readline().split()
    assert word == "held"
    return holder, float(held_at)


def kill(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    assert process.returncode == -signal.SIGKILL


# --- file locks (the embedded default) ---------------------------------------------------


def test_file_lock_slots_cap_eight_callers_in_two_processes_at_three(acumatica, tmp_path):
    run_workers(acumatica, "file", str(tmp_path / "slots"))

    requests_made = PROCESSES * CALLERS_PER_PROCESS * CALLS_PER_CALLER * 3
    assert len(acumatica.requests) == requests_made
    assert acumatica.max_concurrent_seen == LIMIT
    assert sorted(path.name for path in (tmp_path / "slots").iterdir()) == [
        "slot-0.lock",
        "slot-1.lock",
        "slot-2.lock",
    ]


def test_a_killed_file_lock_holder_frees_its_slot_at_once(tmp_path):
    folder = str(tmp_path / "slots")
    holder, _ = start_holder("file", folder)
    slots = FileLockSlots(folder, 1)
    with pytest.raises(AcumaticaBusy):
        with slots.acquire(0.1):
            pass

    kill(holder)
    started = time.monotonic()
    with slots.acquire(1):
        waited = time.monotonic() - started

    assert waited < 0.5


def test_file_lock_wait_timeout_raises_busy_and_sends_nothing(acumatica, tmp_path):
    slots = FileLockSlots(tmp_path / "slots", 1)
    settings = AcumaticaSettings(
        instance_url=acumatica.url, tenant="MyStore", username="admin", password=DEFAULT_PASSWORD
    )
    client = AcumaticaClient(settings, slots=slots, slot_timeout=0.2)

    with slots.acquire(1):
        started = time.monotonic()
        with pytest.raises(AcumaticaBusy) as caught:
            client.test_connection()
        waited = time.monotonic() - started

    assert 0.2 <= waited < 2
    assert acumatica.requests == []
    assert caught.value.retryable
    assert str(caught.value).startswith(
        "All 1 Acumatica request slots (the concurrency level) stayed taken for 0.2 s"
    )


def test_threads_of_one_process_share_file_lock_slots(tmp_path):
    slots = FileLockSlots(tmp_path / "slots", 2)

    with slots.acquire(1), slots.acquire(1):
        with pytest.raises(AcumaticaBusy):
            with slots.acquire(0.05):
                pass
    with slots.acquire(0.05):
        pass


# --- Redis (production) --------------------------------------------------------------------


@pytest.mark.redis
def test_redis_slots_cap_eight_callers_in_two_processes_at_three(acumatica, redis_url, redis_key):
    run_workers(acumatica, "redis", redis_url, redis_key)

    assert acumatica.max_concurrent_seen == LIMIT
    assert RedisSlots(redis_url, redis_key, LIMIT).holders() == 0


@pytest.mark.redis
def test_a_killed_redis_holder_keeps_its_slot_only_until_expiry(redis_url, redis_key):
    expire = 1.5
    holder, held_at = start_holder("redis", redis_url, redis_key, expire)
    slots = RedisSlots(redis_url, redis_key, 1, expire_seconds=expire)

    kill(holder)
    with pytest.raises(AcumaticaBusy):
        with slots.acquire(0.1):
            pass
    with slots.acquire(5):
        taken_at = time.time()

    assert held_at + expire - 0.05 <= taken_at < held_at + expire + 2


@pytest.mark.redis
def test_redis_wait_timeout_raises_busy(redis_url, redis_key):
    slots = RedisSlots(redis_url, redis_key, 2, expire_seconds=30)

    with slots.acquire(1), slots.acquire(1):
        assert slots.holders() == 2
        started = time.monotonic()
        with pytest.raises(AcumaticaBusy) as caught:
            with slots.acquire(0.2):
                pass
        assert 0.2 <= time.monotonic() - started < 2

    assert "All 2 Acumatica request slots" in str(caught.value)
    assert slots.holders() == 0


@pytest.mark.redis
def test_redis_slot_released_when_the_block_raises(redis_url, redis_key):
    slots = RedisSlots(redis_url, redis_key, 1, expire_seconds=30)

    with pytest.raises(RuntimeError):
        with slots.acquire(1):
            raise RuntimeError("request failed")

    with slots.acquire(0.05):
        pass
