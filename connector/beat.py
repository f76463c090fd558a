"""Beat's scheduler, which also records that beat itself is alive."""

from __future__ import annotations

import logging
import time

from django.db import DatabaseError, close_old_connections
from django_celery_beat.schedulers import DatabaseScheduler

from connector.alerts import evaluate_alerts
from connector.models import Heartbeat

logger = logging.getLogger(__name__)

BEAT_HEARTBEAT_EVERY_SECONDS = 15
EVALUATE_ALERTS_EVERY_SECONDS = 60


class HeartbeatScheduler(DatabaseScheduler):
    """Also evaluates the alerts: beat runs without a worker, so a dead worker is noticed
    (a dead beat is noticed by `manage.py evaluate_alerts` from cron, or by /healthz's
    monitor)."""

    _last_heartbeat = 0.0
    _last_alerts = 0.0

    def tick(self, *args, **kwargs):
        now = time.monotonic()
        if now - self._last_heartbeat >= BEAT_HEARTBEAT_EVERY_SECONDS:
            try:
                close_old_connections()
                Heartbeat.beat("beat")
                self._last_heartbeat = now
            except DatabaseError:
                logger.exception("Could not record beat's heartbeat; trying again next tick")
        if now - self._last_alerts >= EVALUATE_ALERTS_EVERY_SECONDS:
            self._last_alerts = now
            try:
                evaluate_alerts()
            except Exception:  # noqa: BLE001 - alerts must never stop the schedules
                logger.exception("Evaluating alerts failed; trying again in a minute")
        return min(super().tick(*args, **kwargs), BEAT_HEARTBEAT_EVERY_SECONDS)
