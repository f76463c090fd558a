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


# --- pulling from Acumatica (issue 9): the `default` queue, never behind the processors ------


@shared_task(name="message_queue.tasks.run_load", ignore_result=True)
def run_load(run_id: int) -> None:
    """An initial load or a catch-up (`LoadRun`); the run records its own outcome. A message
    delivered twice finds the run taken and does nothing."""
    from message_queue.models import LoadRun
    from message_queue.pull import execute

    run = LoadRun.objects.filter(pk=run_id).first()
    if run is not None:  # None: the profile was deleted meanwhile
        execute(run)


@shared_task(name="message_queue.tasks.catch_up_due", ignore_result=True)
def catch_up_due() -> None:
    """Beat's `connector-catch-up`, every minute: the catch-up of each active or paused
    profile whose interval has passed (`message_queue.pull.run_due_catch_ups`)."""
    from message_queue.pull import run_due_catch_ups

    for run in run_due_catch_ups():
        logger.info("Catch-up %s of %s: %s, %s rows, %s keys changed", run.entity,
                    run.profile_id, run.status, run.read, run.keys_changed)


@shared_task(name="message_queue.tasks.run_reconcile", ignore_result=True)
def run_reconcile(run_id: int) -> None:
    """A reconciliation report (`ReconcileRun`); the run records its own outcome."""
    from message_queue.models import ReconcileRun
    from message_queue.reconcile import run_report

    run = ReconcileRun.objects.filter(pk=run_id).first()
    if run is not None:
        run_report(run)
