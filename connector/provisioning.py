"""Set up Acumatica's side of a profile through the Customization API (DESIGN.md section 9).

Initialize publishes the connector's customization project (its generic inquiries and their
push notifications, active); Stop publishes it again with the push notifications inactive.
A `ProvisioningRun` records each: its progress and log are saved on every poll of publishEnd,
so the Initialize / Deactivate screen shows them while Acumatica publishes.

`start(run)` hands a run to a worker (tests replace it); `run_provisioning(run)` does it:

1. take the run (queued → running: a Celery message delivered twice finds it taken);
2. build the project from the profile's settings;
3. test the Acumatica connection (sign in, read, sign out);
4. in one Customization API session (a cookie sign-in, signed out when it ends, whatever
   happens, so no API-user seat is left taken): import the project, publish it, poll
   publishEnd until it completes;
5. succeeded: Initialize makes the profile active (schedulers on), Stop makes it stopped
   (schedulers off), in the same transaction as the run's last save. Failed: the log keeps
   publishEnd's entries, the profile's state is unchanged, and an audit entry says why.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from connector import lifecycle
from connector.acumatica import (
    AcumaticaClient,
    AcumaticaCustomizationError,
    AcumaticaError,
    PublishLogEntry,
    PublishStatus,
)
from connector.acumatica_connection import client_for
from connector.acumatica_project import ConnectorProject, ProjectError, connector_project
from connector.crypto import SecretDecryptionError
from connector.models import AuditEntry, ProvisioningRun, log_entry
from setup_params.models import Profile, get_profile

logger = logging.getLogger(__name__)

Action = ProvisioningRun.Action
Status = ProvisioningRun.Status

PUBLISH_POLL_SECONDS = 5.0
PUBLISH_TIMEOUT_SECONDS = 1800.0
# A run still queued or running this long after it was created lost its worker (killed, or
# no worker ever took it): it stops blocking the next Initialize or Stop.
ABANDONED_AFTER = timedelta(seconds=PUBLISH_TIMEOUT_SECONDS + 600)
RESTART_WARNING = (
    "Publishing restarts the Acumatica website: people working in Acumatica are interrupted "
    "for a minute or two."
)
REDACTED = "••••"

ProgressCallback = Callable[[ProvisioningRun], None]


class NotReady(Exception):
    """The profile cannot be provisioned as it is set up; the text says what to fix."""


# --- creating and handing out runs ----------------------------------------------------------


def check_ready(profile: Profile, action: str) -> None:
    """What a run would fail on before it reaches Acumatica: say it now, create nothing."""
    settings = profile.acumatica_settings
    if not settings.instance_url:
        raise NotReady(
            "no Acumatica instance URL is set: enter it on the Acumatica Connection screen, "
            "or set Acumatica up by hand."
        )
    try:
        has_password = bool(settings.password)
        connector_project(profile, active=action == Action.INITIALIZE)
    except SecretDecryptionError as error:
        raise NotReady(f"a stored secret cannot be read ({error}).") from None
    except ProjectError as error:
        raise NotReady(str(error)) from None
    if not (settings.username and has_password):
        raise NotReady(
            "the Customization API needs the user name and password of an Acumatica user "
            "with the Customizer role: enter them on the Acumatica Connection screen."
        )


def create_run(
    profile: Profile, action: str, *, user=None, actor: str = "", manual: bool = False
) -> ProvisioningRun:
    """A queued run; a manual one is done at once (the administrator imported the package)."""
    if user is not None and not getattr(user, "is_authenticated", False):
        user = None
    run = ProvisioningRun(
        profile=profile,
        action=action,
        manual=manual,
        user=user,
        started_by=user.get_username() if user else (actor or "system"),
    )
    if manual:
        now = timezone.now()
        run.status, run.started_at, run.finished_at = Status.SUCCEEDED, now, now
        run.progress = "Acumatica is set up by hand from the downloaded package."
        run.log = [log_entry(run.progress)]
    run.save()
    return run


def start(run: ProvisioningRun) -> None:
    """Hand the run to a worker once the transaction that created it commits."""
    from connector.tasks import provision_acumatica

    transaction.on_commit(lambda: provision_acumatica.delay(run.pk))


def last_run(profile: Profile) -> ProvisioningRun | None:
    return ProvisioningRun.objects.for_profile(profile).first()


def in_progress_run(profile: Profile) -> ProvisioningRun | None:
    """The profile's queued or running run, after giving up on abandoned ones."""
    abandon_stale_runs(profile)
    return ProvisioningRun.objects.for_profile(profile).in_progress().first()


def abandon_stale_runs(profile: Profile) -> int:
    cutoff = timezone.now() - ABANDONED_AFTER
    return ProvisioningRun.objects.for_profile(profile).in_progress().filter(
        created_at__lt=cutoff
    ).update(
        status=Status.FAILED,
        progress="No worker finished this run: it was given up.",
        finished_at=timezone.now(),
    )


def set_up_by_hand(profile: Profile) -> bool:
    """Whether the last Initialize left Acumatica to the administrator.

    A profile that was never initialized through the connector counts as set up by hand:
    the connector republishes only what it published itself.
    """
    last = (
        ProvisioningRun.objects.for_profile(profile)
        .filter(action=Action.INITIALIZE, status=Status.SUCCEEDED)
        .first()
    )
    return last is None or last.manual


# --- running one --------------------------------------------------------------------------


def run_provisioning(
    run: ProvisioningRun,
    *,
    client: AcumaticaClient | None = None,
    poll_interval: float | None = None,
    timeout: float | None = None,
    on_progress: ProgressCallback | None = None,
) -> ProvisioningRun:
    """Do the run (see the module's docstring); never raises for what Acumatica answers."""
    if not run.claim():
        logger.info("Provisioning run %s is %s already: nothing to do", run.pk, run.status)
        return run
    profile = get_profile(run.profile.name)
    run.profile = profile
    secrets = _secrets(profile)
    publish_polls = 0

    def note(message: str, log_type: str = "information", progress: str = "") -> None:
        run.add_log(_redact(message, secrets), log_type, progress=_redact(progress, secrets))
        if on_progress is not None:
            on_progress(run)

    try:
        project = connector_project(profile, active=run.action == Action.INITIALIZE)
        run.project_name = project.name
        run.save(update_fields=["project_name"])
        client = client or client_for(profile)
        note("Testing the Acumatica connection.")
        note(client.test_connection().summary())
        package = project.package()
        note(_describe(project), progress=f"Importing {project.name}.")
        with client.customization_session() as api:
            _add_entries(run, api.import_project(project.name, project.description, package),
                         secrets)
            note(f"Publishing {project.name}. {RESTART_WARNING}")
            logged_before = list(run.log)

            def polled(status: PublishStatus) -> None:
                nonlocal publish_polls
                publish_polls = status.polls
                run.log = logged_before + [_entry(item, secrets) for item in status.log]
                latest = status.log[-1].message if status.log else "waiting for Acumatica"
                run.progress = _redact(
                    f"Publishing {project.name} (check {status.polls}): {latest}", secrets
                )[:500]
                run.save(update_fields=["log", "progress"])
                if on_progress is not None:
                    on_progress(run)

            api.publish(
                [project.name],
                poll_interval=PUBLISH_POLL_SECONDS if poll_interval is None else poll_interval,
                timeout=PUBLISH_TIMEOUT_SECONDS if timeout is None else timeout,
                on_progress=polled,
            )
    except (AcumaticaError, ProjectError, SecretDecryptionError) as error:
        if isinstance(error, AcumaticaCustomizationError) and not publish_polls:
            _add_entries(run, error.log, secrets)
        _fail(run, profile, _redact(str(error), secrets), on_progress)
        return run
    except Exception as error:  # a bug must not leave the run "running" for half an hour
        logger.exception("Provisioning run %s failed", run.pk)
        _fail(run, profile, f"Unexpected error: {type(error).__name__}: {error}", on_progress)
        return run
    _succeed(run, profile, project)
    if on_progress is not None:
        on_progress(run)
    return run


def _succeed(run: ProvisioningRun, profile: Profile, project: ConnectorProject) -> None:
    names = ", ".join(f"'{push.name}'" for push in project.push_notifications)
    with transaction.atomic():
        if run.action == Action.INITIALIZE:
            done = f"Published {project.name}: push notifications {names} are active."
            lifecycle.complete_initialize(profile, user=run.user, actor=run.started_by,
                                          detail=done)
        else:
            done = f"Published {project.name}: push notifications {names} are inactive."
            lifecycle.complete_stop(profile, user=run.user, actor=run.started_by, detail=done)
        run.log = [*run.log, log_entry(done)]
        run.finish(Status.SUCCEEDED, done)


def _fail(run: ProvisioningRun, profile: Profile, reason: str,
          on_progress: ProgressCallback | None) -> None:
    action = run.get_action_display()
    with transaction.atomic():
        run.log = [*run.log, log_entry(reason, "error")]
        run.finish(Status.FAILED, f"{action} failed: {reason}")
        AuditEntry.record(
            AuditEntry.Kind.PROVISIONING_FAILED,
            user=run.user,
            actor=run.started_by,
            profile=profile,
            detail=f"{action} failed; the state stays {profile.get_state_display()}. {reason}",
        )
    if on_progress is not None:
        on_progress(run)


def _describe(project: ConnectorProject) -> str:
    inquiries = " and ".join(inquiry.name for inquiry in project.inquiries)
    pushes = project.push_notifications
    state = "active" if all(push.active for push in pushes) else "inactive"
    names = ", ".join(f"'{push.name}'" for push in pushes)
    return (
        f"Importing the customization project {project.name}: generic inquiries {inquiries} "
        f"(exposed via OData), push notifications {names} ({state}) to {pushes[0].address} "
        f"with the header {pushes[0].header_name}."
    )


def _add_entries(run: ProvisioningRun, entries: Iterable[PublishLogEntry],
                 secrets: list[str]) -> None:
    added = [_entry(entry, secrets) for entry in entries]
    if added:
        run.log = [*run.log, *added]
        run.save(update_fields=["log"])


def _entry(entry: PublishLogEntry, secrets: list[str]) -> dict:
    return log_entry(_redact(entry.message, secrets), entry.log_type or "information",
                     entry.timestamp)


def _secrets(profile: Profile) -> list[str]:
    values = []
    for read in (lambda: profile.push_secret, lambda: profile.acumatica_settings.password,
                 lambda: profile.acumatica_settings.client_secret):
        try:
            values.append(read())
        except SecretDecryptionError:
            pass
    return [value for value in values if value and len(value) >= 4]


def _redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    return text


# --- the command line ------------------------------------------------------------------------


def run_inline(run: ProvisioningRun, write: Callable[[str], object]) -> ProvisioningRun:
    """Run now, in this process (the commands): one line whenever the progress text changes."""
    shown = ""

    def show(current: ProvisioningRun) -> None:
        nonlocal shown
        if current.progress != shown:
            shown = current.progress
            write(f"  {shown}")

    return run_provisioning(run, on_progress=show)


def failure_report(run: ProvisioningRun) -> str:
    """How the run ended and its log (publishEnd's entries among them), for stderr."""
    run.refresh_from_db()
    lines = [run.progress or f"{run.get_action_display()} did not finish ({run.status})."]
    lines.append("Log:")
    lines += [f"  {entry['timestamp']} {entry['type']}: {entry['message']}" for entry in run.log]
    lines.append(f"The profile's state is unchanged: {run.profile.get_state_display()}.")
    return "\n".join(lines)
