from __future__ import annotations

import logging

from celery import shared_task

from message_queue.processing import run_processor as run_processor_runs

logger = logging.getLogger(__name__)


@shared_task(name="message_queue.tasks.run_processor", ignore_result=True, acks_late=True)
def run_processor(profile_name: str, entity: str) -> None:
    """Beat starts this every minute per (profile, entity) on the `processors` queue."""
    report = run_processor_runs(profile_name, entity)
    if report is None:
        logger.info("%s %s: every sender slot is busy; this run stands down", profile_name, entity)
    elif report.calls or report.outage:
        logger.info("%s %s: %s", profile_name, entity, report.summary())
