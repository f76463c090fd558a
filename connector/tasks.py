from __future__ import annotations

from celery import shared_task

from connector import retention
from connector.models import Heartbeat, ProvisioningRun
from connector.provisioning import run_provisioning


@shared_task(name="connector.tasks.heartbeat", ignore_result=True)
def heartbeat() -> None:
    """Beat fires this every 30 s; a worker running it proves the worker is alive."""
    Heartbeat.beat("worker")


# The `default` queue (CELERY_TASK_DEFAULT_QUEUE): a publish holds a worker slot for minutes and
# must never wait behind the processors' once-a-minute runs.
@shared_task(name="connector.tasks.provision_acumatica", ignore_result=True)
def provision_acumatica(run_id: int) -> None:
    """Publish the connector's customization project for one provisioning run (Initialize or
    Stop); `run_provisioning` records the outcome on the run and never raises for Acumatica's."""
    run = ProvisioningRun.objects.select_related("profile").filter(pk=run_id).first()
    if run is not None:  # None: the profile was deleted meanwhile
        run_provisioning(run)


@shared_task(name="connector.tasks.purge_old_rows", ignore_result=True)
def purge_old_rows() -> None:
    """Beat's `connector-retention`, hourly on the `default` queue (`connector.retention`)."""
    retention.purge_old_rows()
