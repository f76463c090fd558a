"""Initialize, pause, activate and stop a profile (DESIGN.md sections 4 and 5).

`new` and `paused`: push notifications are stored, nothing is sent. `active`: sent.
`stopped`: the schedulers are off and the receiver answers 503; stored messages wait for
the next Initialize.

Initialize and Stop have an Acumatica side: the connector publishes its customization
project there (push notifications active, or inactive for Stop) through a provisioning run
(`connector.provisioning`), and the state changes when the run succeeds. An administrator may
set Acumatica up by hand instead (`manual_acumatica`): the state then changes at once, and
Stop only tells which push notifications to switch off on SM302000.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from connector import provisioning
from connector.acumatica_project import push_notification_names
from connector.models import AuditEntry, ProvisioningRun
from message_queue.models import Entity
from setup_params.models import Profile

PROCESSOR_TASK = "message_queue.tasks.run_processor"
PROCESSORS_QUEUE = "processors"
WAKE_UP_EXPIRES_SECONDS = 55
CONFIRM_INITIALIZE = "Are you sure you wish to initialize all features for Magento Connector?"
MANUAL_DETAIL = "Acumatica side set up by hand."

StartRun = Callable[[ProvisioningRun], None]

State = Profile.State


class LifecycleError(Exception):
    """The action cannot be done now; the text says why."""


@dataclass
class InitializeResult:
    magento_message: str
    push_url: str
    push_header_name: str
    manual_acumatica: bool
    run: ProvisioningRun | None = None  # the publish under way (None: set up by hand)


@dataclass
class StopResult:
    run: ProvisioningRun | None = None  # the publish under way (None: stopped at once)
    # Set up by hand: the push notifications to switch off on SM302000 (none otherwise).
    untick: list[str] = field(default_factory=list)


def scheduler_name(profile: Profile, entity: str) -> str:
    return f"connector: {profile.name} {entity}"


def processor_schedulers(profile: Profile):
    return PeriodicTask.objects.filter(
        name__in=[scheduler_name(profile, entity) for entity in Entity.values]
    )


def ensure_schedulers(profile: Profile) -> None:
    """Beat starts each entity's processor every minute, on the processors queue."""
    every_minute, _ = IntervalSchedule.objects.get_or_create(
        every=1, period=IntervalSchedule.MINUTES
    )
    for entity in Entity.values:
        PeriodicTask.objects.update_or_create(
            name=scheduler_name(profile, entity),
            defaults={
                "task": PROCESSOR_TASK,
                "interval": every_minute,
                "args": json.dumps([profile.name, entity]),
                "queue": PROCESSORS_QUEUE,
                "expire_seconds": WAKE_UP_EXPIRES_SECONDS,
                "enabled": True,
                "description": f"Send {entity} messages of profile {profile.name} to Magento.",
            },
        )


def disable_schedulers(profile: Profile) -> None:
    for task in processor_schedulers(profile):
        task.enabled = False
        task.save(update_fields=["enabled"])


def _actor(user, actor: str) -> str:
    if user is not None and getattr(user, "is_authenticated", False):
        return user.get_username()
    return actor or "system"


def _change_state(profile: Profile, state: str, kind: str, *, user, actor: str, detail="") -> None:
    profile.state = state
    profile.state_changed_at = timezone.now()
    profile.state_changed_by = _actor(user, actor)
    profile.save(update_fields=["state", "state_changed_at", "state_changed_by"])
    AuditEntry.record(kind, user=user, actor=actor, profile=profile, detail=detail)


def initialize(profile: Profile, *, user=None, actor: str = "", manual_acumatica: bool = False,
               test_magento=None, start: StartRun | None = None) -> InitializeResult:
    """Test Magento, then publish the Acumatica side (or trust the administrator's).

    Automatic: a provisioning run is created and started (`start`, default: a Celery task);
    the profile turns active when it succeeds. By hand: active at once.
    """
    from setup_params.services import test_magento_connection

    if not manual_acumatica:
        _refuse_while_publishing(profile)
    outcome = (test_magento or test_magento_connection)(profile.magento_settings)
    if not outcome.ok:
        raise LifecycleError(f"Initialize stopped: {outcome.message}")
    if not manual_acumatica:
        _refuse_unless_ready(profile, ProvisioningRun.Action.INITIALIZE, "Initialize")
    result = InitializeResult(
        magento_message=outcome.message,
        push_url=profile.push_url,
        push_header_name=profile.push_header_name,
        manual_acumatica=manual_acumatica,
    )
    if manual_acumatica:
        with transaction.atomic():
            provisioning.create_run(profile, ProvisioningRun.Action.INITIALIZE, user=user,
                                    actor=actor, manual=True)
            complete_initialize(profile, user=user, actor=actor, detail=MANUAL_DETAIL)
        return result
    result.run = provisioning.create_run(profile, ProvisioningRun.Action.INITIALIZE, user=user,
                                         actor=actor)
    (start or provisioning.start)(result.run)
    return result


def complete_initialize(profile: Profile, *, user=None, actor: str = "", detail: str = "") -> None:
    """The local part of Initialize: schedulers on, state active; after a Stop, a catch-up of
    everything changed in Acumatica since, because no push notification was sent meanwhile."""
    from message_queue.pull import queue_catch_up_since

    stopped_at = profile.state_changed_at if profile.state == State.STOPPED else None
    with transaction.atomic():
        ensure_schedulers(profile)
        _change_state(profile, State.ACTIVE, AuditEntry.Kind.INITIALIZE, user=user, actor=actor,
                      detail=detail)
        if stopped_at is not None:
            queue_catch_up_since(profile, stopped_at, started_by=_actor(user, actor))


def complete_stop(profile: Profile, *, user=None, actor: str = "", detail: str = "") -> None:
    """The local part of Stop: schedulers off, state stopped (the receiver answers 503)."""
    with transaction.atomic():
        disable_schedulers(profile)
        _change_state(profile, State.STOPPED, AuditEntry.Kind.STOP, user=user, actor=actor,
                      detail=detail)


def _refuse_while_publishing(profile: Profile) -> None:
    running = provisioning.in_progress_run(profile)
    if running is not None:
        raise LifecycleError(
            f"A {running.get_action_display()} of profile '{profile}' is already publishing to "
            f"Acumatica (started {running.created_at:%Y-%m-%d %H:%M:%S} by "
            f"{running.started_by}): wait until it ends."
        )


def _refuse_unless_ready(profile: Profile, action: str, what: str) -> None:
    try:
        provisioning.check_ready(profile, action)
    except provisioning.NotReady as error:
        raise LifecycleError(f"{what} stopped: {error}") from None


def pause(profile: Profile, *, user=None, actor: str = "") -> None:
    """Keep capturing changes; send nothing."""
    if profile.state != State.ACTIVE:
        raise LifecycleError(f"Only an active profile can be paused; '{profile}' is "
                             f"{profile.get_state_display().lower()}.")
    _change_state(profile, State.PAUSED, AuditEntry.Kind.PAUSE, user=user, actor=actor)


def activate(profile: Profile, *, user=None, actor: str = "") -> None:
    """A paused profile sends again."""
    if profile.state != State.PAUSED:
        hint = " Initialize it instead." if profile.state in (State.NEW, State.STOPPED) else ""
        raise LifecycleError(f"Only a paused profile can be activated; '{profile}' is "
                             f"{profile.get_state_display().lower()}.{hint}")
    with transaction.atomic():
        ensure_schedulers(profile)
        _change_state(profile, State.ACTIVE, AuditEntry.Kind.ACTIVATE, user=user, actor=actor)


def stop(profile: Profile, *, user=None, actor: str = "", manual_acumatica: bool | None = None,
         start: StartRun | None = None) -> StopResult:
    """Switch Acumatica's push notifications off, then the schedulers; the receiver refuses.

    Set up by hand (the last Initialize, unless `manual_acumatica` says otherwise): stopped
    at once, and the result names the push notifications to untick on SM302000. Otherwise a
    provisioning run republishes the project with them inactive, and the profile is stopped
    when it succeeds.
    """
    if profile.state not in (State.ACTIVE, State.PAUSED):
        raise LifecycleError(f"Only an active or paused profile can be stopped; '{profile}' is "
                             f"{profile.get_state_display().lower()}.")
    manual = provisioning.set_up_by_hand(profile) if manual_acumatica is None else manual_acumatica
    if manual:
        names = push_notification_names(profile)
        complete_stop(profile, user=user, actor=actor,
                      detail=f"Acumatica set up by hand: untick {', '.join(names)} on SM302000.")
        return StopResult(untick=names)
    _refuse_while_publishing(profile)
    _refuse_unless_ready(profile, ProvisioningRun.Action.STOP, "Stop")
    run = provisioning.create_run(profile, ProvisioningRun.Action.STOP, user=user, actor=actor)
    (start or provisioning.start)(run)
    return StopResult(run=run)
