"""Beat's scheduler, which also records that beat itself is alive."""

from __future__ import annotations

import logging
import time

from django.db import DatabaseError, close_old_connections
from django_celery_beat.schedulers import DatabaseScheduler

from connector.models import Heartbeat

logger = logging.getLogger(__name__)

BEAT_HEARTBEAT_EVERY_SECONDS = 15


class HeartbeatScheduler(DatabaseScheduler):
    _last_heartbeat = 0.0

    def tick(self, *args, **kwargs):
        if time.monotonic() - self._last_heartbeat >= BEAT_HEARTBEAT_EVERY_SECONDS:
            try:
                close_old_connections()
                Heartbeat.beat("beat")
                self._last_heartbeat = time.monotonic()
            except DatabaseError:
                logger.exception("Could not record beat's heartbeat; trying again next tick")
        return min(super().tick(*args, **kwargs), BEAT_HEARTBEAT_EVERY_SECONDS)
