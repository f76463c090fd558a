"""Real Celery processes on a real Redis: a worker runs tasks; heartbeats keep /healthz green."""

from __future__ import annotations

import uuid

import pytest

from connector.models import Heartbeat
from tests.helpers import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]


def test_a_real_worker_on_redis_completes_a_task(celery_processes, redis_url):
    from connector.celery import app

    queue = f"test-heartbeat-{uuid.uuid4().hex[:8]}"  # no other worker on this Redis takes it
    worker = celery_processes("worker", "-Q", queue)
    with app.connection_for_write(redis_url) as connection:
        app.send_task("connector.tasks.heartbeat", queue=queue, connection=connection)
    wait_for(
        lambda: Heartbeat.objects.filter(process="worker").exists(),
        timeout=60,
        message=f"the worker to run the task; its log:\n{worker.output()}",
    )


def test_healthz_turns_green_with_beat_and_worker_running_and_names_a_stopped_worker(
    celery_processes, live_server, settings
):
    import requests

    worker = celery_processes("worker")
    beat = celery_processes("beat")
    health_url = live_server.url + "/healthz"

    def healthy():
        return requests.get(health_url, timeout=10).status_code == 200

    wait_for(
        healthy,
        timeout=120,
        interval=1,
        message=f"/healthz 200; worker log:\n{worker.output()}\nbeat log:\n{beat.output()}",
    )
    worker.stop()
    # Beat checks in every 15 s and keeps sending the worker's heartbeat task every 30 s;
    # with no worker to run it, only the worker's heartbeat goes stale.
    settings.HEARTBEAT_STALE_SECONDS = 20

    def only_worker_down():
        response = requests.get(health_url, timeout=10)
        return response.status_code == 503 and response.json()["down"] == ["worker"]

    wait_for(only_worker_down, timeout=60, interval=1, message="/healthz to name the worker")
