"""Alerts: operators hear of trouble by e-mail or webhook, without watching the screens.

`evaluate_alerts` runs every minute (beat's `connector-alerts` → `connector.tasks`):

1. Observe every condition from the database: each profile's outage guards, its failures in
   the last hour, the oldest pending message of an active profile, Acumatica's API Login
   Limit; and the worker's and beat's heartbeats for the whole instance.
2. Compare each with its `AlertState`. A change (clear → raised, raised → clear) is made with
   a conditional UPDATE, so two evaluations at once still make it once; the change is audited
   (`AuditEntry.Kind.ALERT`) and queued for delivery. While nothing changes, nothing is sent:
   one alert per condition until it clears.
3. Deliver what is queued: one e-mail to the recipients and one POST per webhook URL, each
   JSON `{profile, condition, state, message, at}`. Only a 2xx marks a webhook delivered; a
   failure is logged and tried again at the next evaluation, for that change only, and given
   up after a day.

Messages never carry a secret: the profiles' secrets are redacted from every one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import F, Q, Sum
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from connector.acumatica import LOGIN_LIMIT_TEXT, SESSION_IDLE_TIMEOUT_SECONDS
from connector.crypto import SecretDecryptionError
from connector.http_failures import redact
from connector.models import (
    AlertSettings,
    AlertState,
    AuditEntry,
    Heartbeat,
    LoginLimitReport,
    ProvisioningRun,
)
from message_queue.models import Entity, HourlyStats, Message, OutageGuard, Status
from setup_params.models import Profile

logger = logging.getLogger(__name__)

WEBHOOK_TIMEOUT_SECONDS = 10
# Longer than one e-mail plus a few webhooks at their timeouts: another evaluation leaves the
# change alone meanwhile, and takes it over if this one died.
DELIVERY_LEASE = timedelta(minutes=2)
GIVE_UP_DELIVERY_AFTER = timedelta(days=1)
# Acumatica frees an API-user seat after this much idle time: a limit not seen again for that
# long is over.
LOGIN_LIMIT_HOLDS_FOR = timedelta(seconds=SESSION_IDLE_TIMEOUT_SECONDS)
MESSAGE_MAX_CHARS = 1000

RAISED = "raised"
CLEARED = "cleared"

OUTAGE_GUARD = "outage_guard"
FAILURES_PER_HOUR = "failures_per_hour"
OLDEST_PENDING = "oldest_pending"
LOGIN_LIMIT = "login_limit"
WORKER_HEARTBEAT = "worker_heartbeat"
BEAT_HEARTBEAT = "beat_heartbeat"

TITLES = {
    OUTAGE_GUARD: "Outage guard tripped ({entity})",
    FAILURES_PER_HOUR: "Failures in the last hour",
    OLDEST_PENDING: "Pending message waiting too long ({entity})",
    LOGIN_LIMIT: "Acumatica API Login Limit",
    WORKER_HEARTBEAT: "Worker heartbeat stopped",
    BEAT_HEARTBEAT: "Beat heartbeat stopped",
}


def title(condition: str) -> str:
    """'outage_guard:price' → 'Outage guard tripped (Pricing)'."""
    family, _, entity = condition.partition(":")
    label = Entity(entity).label if entity in Entity.values else entity
    return TITLES.get(family, family).format(entity=label)


@dataclass(frozen=True)
class Observation:
    """What one condition looks like now; `message` says what is wrong, or that it is not."""

    profile: Profile | None
    condition: str
    holds: bool
    message: str


@dataclass(frozen=True)
class Alert:
    """One change of one condition, as e-mailed, posted and audited."""

    profile: str | None
    condition: str
    state: str
    message: str
    at: datetime

    @classmethod
    def of(cls, state: AlertState) -> Alert:
        return cls(
            profile=state.profile.name if state.profile_id else None,
            condition=state.condition,
            state=RAISED if state.raised else CLEARED,
            message=state.last_message,
            at=state.changed_at,
        )

    @property
    def title(self) -> str:
        return title(self.condition)

    def payload(self) -> dict:
        return {
            "profile": self.profile,
            "condition": self.condition,
            "state": self.state,
            "message": self.message,
            "at": self.at.isoformat(),
        }


# --- the entry points ------------------------------------------------------------------------


def evaluate_alerts(now: datetime | None = None) -> list[Alert]:
    """Observe, change what changed, deliver what is due; returns the changes made now."""
    now = now or timezone.now()
    alert_settings = list(AlertSettings.objects.select_related("profile"))
    alerts = change_states(observe(now, alert_settings), alert_settings, now)
    deliver(alert_settings, now)
    return alerts


def note_login_limit(profile: Profile, message: str, *, now: datetime | None = None) -> None:
    """Call where `AcumaticaLoginLimit` is caught: the next evaluation raises the alert, and it
    clears once no limit has been noted for Acumatica's session idle timeout (10 minutes)."""
    LoginLimitReport.objects.update_or_create(
        profile=profile,
        defaults={
            "seen_at": now or timezone.now(),
            "message": redact(message, profile_secrets([profile]))[:MESSAGE_MAX_CHARS],
        },
    )


# --- 1. observing ----------------------------------------------------------------------------


def observe(now: datetime, alert_settings: Iterable[AlertSettings]) -> list[Observation]:
    profiles = list(Profile.objects.order_by("name"))
    thresholds = {item.profile_id: item for item in alert_settings}
    for profile in profiles:
        if profile.pk not in thresholds:  # never configured: the defaults apply
            thresholds[profile.pk] = AlertSettings(profile=profile)
    return [
        *observe_outage_guards(profiles),
        *observe_failures(profiles, thresholds, now),
        *observe_oldest_pending(profiles, thresholds, now),
        *observe_login_limits(profiles, now),
        *observe_heartbeats(now),
    ]


def observe_outage_guards(profiles: list[Profile]) -> Iterator[Observation]:
    tripped = {
        (guard.profile_id, guard.entity): guard
        for guard in OutageGuard.objects.filter(tripped=True)
    }
    for profile in profiles:
        for entity, label in Entity.choices:
            guard = tripped.get((profile.pk, entity))
            if guard is not None:
                message = (
                    f"Sending {label} to Magento is paused for profile {profile}: "
                    f"{guard.last_error or 'no error recorded'}. Pending messages wait; one "
                    "probe call per pass, and the first success resumes sending."
                )
            else:
                message = f"Sending {label} to Magento runs again for profile {profile}."
            yield Observation(profile, f"{OUTAGE_GUARD}:{entity}", guard is not None, message)


def observe_failures(
    profiles: list[Profile], thresholds: dict[int, AlertSettings], now: datetime
) -> Iterator[Observation]:
    """Failed records plus failed calls in the last 60 minutes, from the hourly totals.

    The totals are per clock hour, so the last 60 minutes are estimated the way sliding-window
    rate limiters do: this hour's count plus the previous hour's, weighted by how much of the
    previous hour is still inside the window.
    """
    this_hour = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    previous_hour = this_hour - timedelta(hours=1)
    previous_weight = 1 - (now - this_hour) / timedelta(hours=1)
    failures: dict[int, float] = {}
    rows = (
        HourlyStats.objects.filter(hour__gte=previous_hour, hour__lte=this_hour)
        .values("profile_id", "hour")
        .annotate(failures=Sum(F("failed") + F("failed_calls")))
    )
    for row in rows:
        weight = 1 if row["hour"] == this_hour else previous_weight
        failures[row["profile_id"]] = failures.get(row["profile_id"], 0) + row["failures"] * weight
    for profile in profiles:
        count = int(failures.get(profile.pk, 0))
        threshold = thresholds[profile.pk].failures_per_hour_threshold
        if count >= threshold:
            message = (
                f"{count} failures in the last hour for profile {profile} (failed records "
                f"plus failed calls to Magento; the alert threshold is {threshold}). See the "
                "queue dashboard and Reprocess Failed Messages."
            )
        else:
            message = (
                f"Failures in the last hour for profile {profile} are down to {count} "
                f"(threshold {threshold})."
            )
        yield Observation(profile, FAILURES_PER_HOUR, count >= threshold, message)


def observe_oldest_pending(
    profiles: list[Profile], thresholds: dict[int, AlertSettings], now: datetime
) -> Iterator[Observation]:
    """How long the first pending message in claim order has been due, per profile and entity.

    One query each, on `message_claim_idx` (pending rows by next attempt). Only an active
    profile sends: a new, paused or stopped one keeps its messages on purpose.
    """
    for profile in profiles:
        limit = timedelta(minutes=thresholds[profile.pk].oldest_pending_minutes)
        for entity, label in Entity.choices:
            condition = f"{OLDEST_PENDING}:{entity}"
            if profile.state != Profile.State.ACTIVE:
                yield Observation(
                    profile, condition, False,
                    f"Profile {profile} is {profile.get_state_display().lower()}: its pending "
                    f"{label} messages wait until it is active.",
                )
                continue
            oldest = (
                Message.objects.filter(profile=profile, entity=entity, status=Status.PENDING)
                .order_by("next_attempt_at", "id")
                .values_list("next_attempt_at", "sku")
                .first()
            )
            waited = now - oldest[0] if oldest else timedelta(0)
            minutes = int(limit.total_seconds() // 60)
            if waited > limit:
                message = (
                    f"The oldest pending {label} message of profile {profile} (SKU {oldest[1]}) "
                    f"has waited {int(waited.total_seconds() // 60)} min to be sent (threshold "
                    f"{minutes} min). Check that the worker runs and that Magento answers."
                )
            else:
                message = (
                    f"No {label} message of profile {profile} has waited longer than "
                    f"{minutes} min."
                )
            yield Observation(profile, condition, waited > limit, message)


def observe_login_limits(profiles: list[Profile], now: datetime) -> Iterator[Observation]:
    """Reported by `note_login_limit`, or seen in a provisioning run that failed on it."""
    since = now - LOGIN_LIMIT_HOLDS_FOR
    seen: dict[int, str] = {}
    failed_runs = ProvisioningRun.objects.filter(
        status=ProvisioningRun.Status.FAILED,
        finished_at__gte=since,
        progress__icontains=LOGIN_LIMIT_TEXT,
    ).order_by("finished_at")
    for run in failed_runs:
        seen[run.profile_id] = run.progress
    for report in LoginLimitReport.objects.filter(seen_at__gte=since):
        seen[report.profile_id] = report.message
    minutes = int(LOGIN_LIMIT_HOLDS_FOR.total_seconds() // 60)
    for profile in profiles:
        if profile.pk in seen:
            message = (
                f"Acumatica refused a sign-in for profile {profile}: every API-user seat of its "
                f"license is taken ({LOGIN_LIMIT_TEXT}). Seats free up after {minutes} minutes "
                "idle; the license's API-user count is on License Monitoring Console "
                f"(SM604000). Acumatica said: {seen[profile.pk]}"
            )
        else:
            message = (
                f"No {LOGIN_LIMIT_TEXT} from Acumatica for profile {profile} in the last "
                f"{minutes} minutes."
            )
        yield Observation(profile, LOGIN_LIMIT, profile.pk in seen, message)


HEARTBEAT_CONDITIONS = [
    ("worker", WORKER_HEARTBEAT, "nothing is sent to Magento and no task runs"),
    ("beat", BEAT_HEARTBEAT, "no processor, alert or housekeeping task is started"),
]


def observe_heartbeats(now: datetime) -> Iterator[Observation]:
    """A heartbeat older than HEARTBEAT_STALE_SECONDS; one never seen is no alert (the
    process never ran here, which /healthz shows)."""
    seen = {heartbeat.process: heartbeat.seen_at for heartbeat in Heartbeat.objects.all()}
    stale_seconds = settings.HEARTBEAT_STALE_SECONDS
    for process, condition, consequence in HEARTBEAT_CONDITIONS:
        if process not in seen:
            yield Observation(None, condition, False, f"No {process} heartbeat seen yet.")
            continue
        age = int((now - seen[process]).total_seconds())
        if age > stale_seconds:
            message = (
                f"The {process} has not checked in for {age} s (limit {stale_seconds} s): "
                f"{consequence}. Restart it, then check /healthz."
            )
        else:
            message = f"The {process} checks in again (last heartbeat {max(age, 0)} s ago)."
        yield Observation(None, condition, age > stale_seconds, message)


# --- 2. changing -----------------------------------------------------------------------------


def change_states(
    observations: list[Observation], alert_settings: list[AlertSettings], now: datetime
) -> list[Alert]:
    states = {(state.profile_id, state.condition): state for state in AlertState.objects.all()}
    secrets: list[str] | None = None
    alerts = []
    for observation in observations:
        profile_id = observation.profile.pk if observation.profile else None
        state = states.get((profile_id, observation.condition))
        if state is None:
            if not observation.holds:
                continue  # never raised: nothing to clear, no row needed
            state, _ = AlertState.objects.get_or_create(
                profile=observation.profile, condition=observation.condition
            )
        if state.raised == observation.holds:
            continue
        if secrets is None:  # decrypted only when something changes, once per evaluation
            secrets = profile_secrets(
                Profile.objects.select_related("magento_settings", "acumatica_settings")
            )
        message = redact(observation.message, secrets)[:MESSAGE_MAX_CHARS]
        if change(state, observation, message, targets(profile_id, alert_settings), now):
            state.profile = observation.profile
            alerts.append(Alert.of(state))
    return alerts


def change(state: AlertState, observation: Observation, message: str,
           deliver_to: list[AlertSettings], now: datetime) -> bool:
    """Raise or clear, audit, and queue the delivery; False if another evaluation did it."""
    fields = {
        "raised": observation.holds,
        "changed_at": now,
        ("raised_at" if observation.holds else "cleared_at"): now,
        "last_message": message,
        "email_pending": any(target.recipients() for target in deliver_to),
        "webhooks_pending": [target.pk for target in deliver_to if target.webhook_url],
        "delivery_lease_until": None,
    }
    with transaction.atomic():
        changed = AlertState.objects.filter(
            pk=state.pk, raised=state.raised, changed_at=state.changed_at
        ).update(**fields)
        if changed != 1:
            return False
        word = RAISED if observation.holds else CLEARED
        AuditEntry.record(
            AuditEntry.Kind.ALERT,
            profile=observation.profile,
            actor="system",
            detail=f"{title(observation.condition)}: {word}. {message}",
        )
    for name, value in fields.items():
        setattr(state, name, value)
    return True


def targets(profile_id: int | None, alert_settings: list[AlertSettings]) -> list[AlertSettings]:
    """A profile's alerts go to its settings; the instance's go to every profile's."""
    return [item for item in alert_settings if profile_id is None or item.profile_id == profile_id]


# (related settings, secret) of a profile; "" is the profile itself.
SECRETS = [
    ("", "push_secret"),
    ("magento_settings", "token"),
    ("acumatica_settings", "password"),
    ("acumatica_settings", "client_secret"),
    ("acumatica_settings", "access_token"),
    ("acumatica_settings", "refresh_token"),
]


def profile_secrets(profiles: Iterable[Profile]) -> list[str]:
    """Every secret the profiles hold, decrypted, so that no alert can repeat one."""
    values = []
    for profile in profiles:
        for related, name in SECRETS:
            holder = getattr(profile, related, None) if related else profile
            if holder is None:
                continue
            try:
                values.append(getattr(holder, name))
            except SecretDecryptionError:
                pass
    return [value for value in values if value]


# --- 3. delivering ---------------------------------------------------------------------------


def deliver(alert_settings: list[AlertSettings], now: datetime) -> None:
    """Send each change not yet delivered; the table is small (profiles × conditions)."""
    for state in AlertState.objects.select_related("profile"):
        if not (state.email_pending or state.webhooks_pending):
            continue
        unchanged = AlertState.objects.filter(pk=state.pk, changed_at=state.changed_at)
        if state.changed_at < now - GIVE_UP_DELIVERY_AFTER:
            logger.error("Giving up delivering alert %s of %s (changed at %s)",
                         state.condition, state.profile or "the instance", state.changed_at)
            unchanged.update(email_pending=False, webhooks_pending=[])
            continue
        claimed = unchanged.filter(
            Q(delivery_lease_until__isnull=True) | Q(delivery_lease_until__lt=now)
        ).update(delivery_lease_until=now + DELIVERY_LEASE)
        if claimed != 1:
            continue  # another evaluation is delivering it
        alert = Alert.of(state)
        mine = targets(state.profile_id, alert_settings)
        email_pending = state.email_pending and not send_email(alert, mine)
        webhooks_pending = post_webhooks(alert, mine, state.webhooks_pending)
        # Only for the change delivered: if it changed meanwhile, the new change is pending.
        unchanged.update(email_pending=email_pending, webhooks_pending=webhooks_pending,
                         delivery_lease_until=None)


def send_email(alert: Alert, deliver_to: list[AlertSettings]) -> bool:
    """One e-mail to every recipient; True when sent (or nobody is to get it)."""
    recipients = sorted({address for target in deliver_to for address in target.recipients()})
    if not recipients:
        return True
    try:
        EmailMessage(
            subject=email_subject(alert),
            body=email_body(alert),
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=recipients,
        ).send()
    except Exception:  # SMTP errors, refused connections, timeouts: all tried again later
        logger.exception("Could not e-mail alert %s (%s); trying again at the next evaluation",
                         alert.condition, alert.state)
        return False
    return True


def email_subject(alert: Alert) -> str:
    where = f"profile {alert.profile}" if alert.profile else "the whole connector"
    return f"[Connector] {alert.state.upper()}: {alert.title} ({where})"


def email_body(alert: Alert) -> str:
    try:
        audit = settings.CONNECTOR_BASE_URL + reverse("audit_log")
    except NoReverseMatch:
        audit = settings.CONNECTOR_BASE_URL
    return (
        f"{alert.message}\n\n"
        f"Profile: {alert.profile or '(the whole connector)'}\n"
        f"Condition: {alert.condition}\n"
        f"State: {alert.state}\n"
        f"At: {alert.at.isoformat()}\n\n"
        f"Every alert is on the audit log: {audit}\n"
    )


def post_webhooks(alert: Alert, deliver_to: list[AlertSettings], pending: list[int]) -> list[int]:
    """POST the alert to each pending webhook URL once; returns the ids still pending."""
    by_url: dict[str, list[int]] = {}
    for target in deliver_to:
        if target.pk in pending and target.webhook_url:
            by_url.setdefault(target.webhook_url, []).append(target.pk)
    still_pending: list[int] = []
    for url, ids in by_url.items():
        if not post_webhook(url, alert):
            still_pending += ids
    return still_pending


def post_webhook(url: str, alert: Alert) -> bool:
    # The URL may carry a token (chat webhooks do): logs name its host only.
    host = urlsplit(url).hostname
    try:
        response = requests.post(url, json=alert.payload(), timeout=WEBHOOK_TIMEOUT_SECONDS,
                                 allow_redirects=False)
    except requests.RequestException as error:
        logger.warning("Alert webhook at %s failed for %s (%s): %s; trying again at the next "
                       "evaluation", host, alert.condition, alert.state, type(error).__name__)
        return False
    if not 200 <= response.status_code < 300:
        logger.warning("Alert webhook at %s answered HTTP %s for %s (%s); trying again at the "
                       "next evaluation", host, response.status_code, alert.condition,
                       alert.state)
        return False
    return True
