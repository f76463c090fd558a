"""Initialize, pause, activate and stop a profile (DESIGN.md sections 4 and 5).

`new` and `paused`: push notifications are stored, nothing is sent. `active`: sent.
`stopped`: the schedulers are off and the receiver answers 503; stored messages wait for
the next Initialize.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from connector.models import AuditEntry
from message_queue.models import Entity
from setup_params.models import Profile

PROCESSOR_TASK = "message_queue.tasks.run_processor"
PROCESSORS_QUEUE = "processors"
WAKE_UP_EXPIRES_SECONDS = 55
CONFIRM_INITIALIZE = "Are you sure you wish to initialize all features for Magento Connector?"

State = Profile.State


class LifecycleError(Exception):
    """The action cannot be done now; the text says why."""


@dataclass
class InitializeResult:
    magento_message: str
    push_url: str
    push_header_name: str
    manual_acumatica: bool


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
               test_magento=None) -> InitializeResult:
    """Test Magento, switch the schedulers on, and make the profile active."""
    from setup_params.services import test_magento_connection

    outcome = (test_magento or test_magento_connection)(profile.magento_settings)
    if not outcome.ok:
        raise LifecycleError(f"Initialize stopped: {outcome.message}")
    with transaction.atomic():
        ensure_schedulers(profile)
        detail = "Acumatica side set up by hand." if manual_acumatica else ""
        _change_state(profile, State.ACTIVE, AuditEntry.Kind.INITIALIZE, user=user, actor=actor,
                      detail=detail)
    return InitializeResult(
        magento_message=outcome.message,
        push_url=profile.push_url,
        push_header_name=profile.push_header_name,
        manual_acumatica=manual_acumatica,
    )


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


def stop(profile: Profile, *, user=None, actor: str = "") -> None:
    """Schedulers off; the receiver refuses push notifications until Initialize."""
    if profile.state not in (State.ACTIVE, State.PAUSED):
        raise LifecycleError(f"Only an active or paused profile can be stopped; '{profile}' is "
                             f"{profile.get_state_display().lower()}.")
    with transaction.atomic():
        disable_schedulers(profile)
        _change_state(profile, State.STOPPED, AuditEntry.Kind.STOP, user=user, actor=actor)
