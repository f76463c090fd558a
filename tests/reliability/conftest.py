"""Fault tests (issue 7): real processes the tests start, break and stop themselves.

A test that runs processes starts its own: a private `redis-server` on a free port (killing
the broker never touches the machine's Redis), Celery workers and beat on it, gunicorn for
the receiver; all against the test database on PostgreSQL.
"""

from __future__ import annotations

import shutil
import sys

import pytest
from django.core.management.sql import emit_post_migrate_signal
from django.db import connection

from sandbox.magento import DEFAULT_TOKEN, MagentoSimulator
from sandbox.server import serve
from setup_params.models import Profile, get_profile
from tests.helpers import skip_or_fail, subprocess_environment
from tests.message_queue.builders import Pusher
from tests.reliability.processes import ChildProcess, RedisServer


@pytest.fixture
def postgresql(transactional_db):
    """Committed rows on PostgreSQL, as every process of the connector sees them."""
    if connection.vendor != "postgresql":
        skip_or_fail("the fault tests need PostgreSQL (set DATABASE_URL=postgres://…)")
    emit_post_migrate_signal(verbosity=0, interactive=False, db="default")


@pytest.fixture
def private_redis(tmp_path):
    if shutil.which("redis-server") is None:
        skip_or_fail("the fault tests need redis-server on PATH")
    redis = RedisServer(tmp_path)
    redis.start()
    yield redis
    redis.stop()


@pytest.fixture
def processes(postgresql, tmp_path, private_redis):
    """Start real `celery worker`, `celery beat` or gunicorn processes on the private Redis and
    the test database; each one still running is stopped when the test ends."""
    started: list[ChildProcess] = []

    def start(kind: str, *extra: str, **environment: str) -> ChildProcess:
        celery = [sys.executable, "-m", "celery", "-A", "connector"]
        arguments = {
            "worker": [*celery, "worker", "-Q", "processors,default", "--concurrency", "2",
                       "--loglevel", "INFO", "--without-gossip", "--without-mingle",
                       "--hostname", f"reliability{len(started)}@%h"],
            "beat": [*celery, "beat", "--loglevel", "INFO",
                     "--schedule", str(tmp_path / "beat.db")],
            "gunicorn": [sys.executable, "-m", "gunicorn", "connector.wsgi:application",
                         "--access-logfile", "-", "--error-logfile", "-"],
        }[kind]
        environment = subprocess_environment(CELERY_BROKER_URL=private_redis.url, **environment)
        process = ChildProcess([*arguments, *extra], environment,
                               tmp_path / f"{kind}-{len(started)}.log")
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def send_task(private_redis):
    """Send a Celery task through the private Redis, as beat does."""
    from connector.celery import app

    def send(name: str, *args, queue: str = "processors") -> None:
        with app.connection_for_write(private_redis.url) as broker:
            app.send_task(name, args=list(args), queue=queue, connection=broker)

    return send


@pytest.fixture
def magento():
    simulator = MagentoSimulator()
    with serve(simulator) as base_url:
        simulator.url = base_url
        yield simulator


@pytest.fixture
def profile(db, magento) -> Profile:
    """The default profile, active, sending to the served simulator."""
    profile = get_profile("default")
    settings = profile.magento_settings
    settings.magento_url = magento.url
    settings.token = DEFAULT_TOKEN
    settings.timeout = 5
    settings.save()
    profile.state = Profile.State.ACTIVE
    profile.save(update_fields=["state"])
    return get_profile("default")


@pytest.fixture
def push(profile) -> Pusher:
    return Pusher(profile)
