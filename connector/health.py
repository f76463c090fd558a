"""What /healthz checks: the database, the broker, and beat's and the worker's heartbeats."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from connector.celery import app
from connector.models import Heartbeat

BROKER_CHECK_TIMEOUT_SECONDS = 3


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


def check_database() -> Check:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return Check("database", True, connection.vendor)
    except Exception as error:  # noqa: BLE001 - any failure means "down"
        return Check("database", False, f"{type(error).__name__}: {error}")


def check_broker() -> Check:
    try:
        # The URL from the settings: Celery would prefer CELERY_BROKER_URL from the environment.
        with app.connection_for_write(settings.CELERY_BROKER_URL) as broker:
            broker.ensure_connection(max_retries=1, timeout=BROKER_CHECK_TIMEOUT_SECONDS)
        return Check("broker", True, settings.CELERY_BROKER_URL.split("://")[0])
    except Exception as error:  # noqa: BLE001
        return Check("broker", False, f"{type(error).__name__}: {error}")


def check_heartbeat(process: str) -> Check:
    try:
        heartbeat = Heartbeat.objects.filter(process=process).first()
    except Exception as error:  # noqa: BLE001
        return Check(process, False, f"cannot read heartbeat: {type(error).__name__}")
    if heartbeat is None:
        return Check(process, False, f"no {process} heartbeat seen yet")
    age = timezone.now() - heartbeat.seen_at
    if age > timedelta(seconds=settings.HEARTBEAT_STALE_SECONDS):
        return Check(process, False, f"last {process} heartbeat {int(age.total_seconds())} s ago")
    return Check(process, True, f"last heartbeat {int(age.total_seconds())} s ago")


def run_checks() -> list[Check]:
    return [check_database(), check_broker(), check_heartbeat("beat"), check_heartbeat("worker")]
