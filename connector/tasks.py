from __future__ import annotations

from celery import shared_task

from connector.models import Heartbeat


@shared_task(name="connector.tasks.heartbeat", ignore_result=True)
def heartbeat() -> None:
    """Beat fires this every 30 s; a worker running it proves the worker is alive."""
    Heartbeat.beat("worker")
