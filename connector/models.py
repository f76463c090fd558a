from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, validate_email
from django.db import models
from django.db.models import Q
from django.utils import timezone


class ConnectorRole(models.Model):
    """Carries the connector's permissions; it has no table of its own.

    `connector.manage` changes settings and acts on the queue; `connector.view` (the
    `viewer` group) reads dashboards and lists.
    """

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("manage", "Can change the connector's settings and act on its queue"),
            ("view", "Can see the connector's dashboards and lists"),
        ]

    def __str__(self) -> str:
        return "connector role"


class Heartbeat(models.Model):
    """The last time each background process was seen alive; /healthz reads it."""

    process = models.CharField(
        "process", max_length=20, unique=True, help_text="worker or beat"
    )
    seen_at = models.DateTimeField("seen at", help_text="When the process last checked in.")

    class Meta:
        verbose_name = "heartbeat"

    def __str__(self) -> str:
        return f"{self.process} at {self.seen_at:%Y-%m-%d %H:%M:%S}"

    @classmethod
    def beat(cls, process: str) -> None:
        cls.objects.update_or_create(process=process, defaults={"seen_at": timezone.now()})


class AuditEntryQuerySet(models.QuerySet):
    def for_profile(self, profile) -> AuditEntryQuerySet:
        return self.filter(profile=profile)


class AuditEntry(models.Model):
    """Who did what, when. Field names only, never a secret's value."""

    class Kind(models.TextChoices):
        SETTINGS_CHANGED = "settings_changed", "Settings changed"
        SECRET_ROTATED = "secret_rotated", "Secret rotated"
        INITIALIZE = "initialize", "Initialized"
        PAUSE = "pause", "Paused"
        STOP = "stop", "Stopped"
        ACTIVATE = "activate", "Activated"
        REPROCESS = "reprocess", "Reprocessed messages"
        DISMISS = "dismiss", "Dismissed messages"
        OUTAGE = "outage", "Outage guard"
        PROVISIONING_FAILED = "provisioning_failed", "Acumatica publish failed"
        ALERT = "alert", "Alert"

    created_at = models.DateTimeField("when", default=timezone.now, db_index=True)
    user = models.ForeignKey(
        "auth.User",
        verbose_name="user",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        help_text="The person who acted; empty for the command line or the connector itself.",
    )
    actor = models.CharField(
        "actor", max_length=150, help_text="Username, or 'cli' / 'system' when no user acted."
    )
    profile = models.ForeignKey(
        "setup_params.Profile",
        verbose_name="profile",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="audit_entries",
    )
    kind = models.CharField("kind", max_length=32, choices=Kind.choices, db_index=True)
    fields = models.JSONField(
        "fields", default=list, blank=True, help_text="Names of the settings that changed."
    )
    detail = models.TextField("detail", blank=True)

    objects = AuditEntryQuerySet.as_manager()

    class Meta:
        verbose_name = "audit entry"
        verbose_name_plural = "audit entries"
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor}: {self.get_kind_display()}"

    @classmethod
    def record(cls, kind: str, *, user=None, profile=None, fields=(), detail: str = "", actor=""):
        if user is not None and not getattr(user, "is_authenticated", False):
            user = None
        return cls.objects.create(
            kind=kind,
            user=user,
            actor=actor or (user.get_username() if user else "system"),
            profile=profile,
            fields=sorted(fields),
            detail=detail,
        )


class ProvisioningRunQuerySet(models.QuerySet):
    def for_profile(self, profile) -> ProvisioningRunQuerySet:
        return self.filter(profile=profile)

    def in_progress(self) -> ProvisioningRunQuerySet:
        status = ProvisioningRun.Status
        return self.filter(status__in=[status.QUEUED, status.RUNNING])


class ProvisioningRun(models.Model):
    """One publish of the connector's customization project to Acumatica.

    Initialize publishes the generic inquiries and their push notifications (active); Stop
    publishes them again with the push notifications inactive. A run set up by hand (`manual`)
    publishes nothing: the administrator imported the downloaded package.
    """

    class Action(models.TextChoices):
        INITIALIZE = "initialize", "Initialize"
        STOP = "stop", "Stop"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    profile = models.ForeignKey(
        "setup_params.Profile",
        verbose_name="profile",
        on_delete=models.CASCADE,
        related_name="provisioning_runs",
        help_text="The profile whose Acumatica side is set up.",
    )
    action = models.CharField(
        "action", max_length=10, choices=Action.choices,
        help_text="Initialize publishes the push notifications active; Stop, inactive.",
    )
    manual = models.BooleanField(
        "set up by hand", default=False,
        help_text="The administrator imported the package in Acumatica; nothing was published.",
    )
    status = models.CharField(
        "status", max_length=10, choices=Status.choices, default=Status.QUEUED,
        help_text="Queued until a worker takes it; Running while Acumatica publishes.",
    )
    project_name = models.CharField(
        "project name", max_length=100, blank=True,
        help_text="The customization project published (Customization Projects, SM204505).",
    )
    progress = models.CharField(
        "progress", max_length=500, blank=True,
        help_text="The step in progress, or how the run ended.",
    )
    log = models.JSONField(
        "log", default=list, blank=True,
        help_text="The connector's steps and Acumatica's publish log: "
        "[{timestamp, type, message}].",
    )
    user = models.ForeignKey(
        "auth.User",
        verbose_name="user",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        help_text="The person who started it; empty for the command line.",
    )
    started_by = models.CharField(
        "started by", max_length=150, help_text="Username, or 'cli' when no user acted."
    )
    created_at = models.DateTimeField("created at", default=timezone.now)
    started_at = models.DateTimeField(
        "started at", null=True, blank=True, help_text="When a worker took it."
    )
    finished_at = models.DateTimeField("finished at", null=True, blank=True)

    objects = ProvisioningRunQuerySet.as_manager()

    class Meta:
        verbose_name = "Acumatica provisioning run"
        ordering = ["-created_at", "-id"]
        indexes = [
            # The screen's "last run of this profile" and the in-progress check.
            models.Index(fields=["profile", "-created_at"], name="provisioning_profile_created"),
        ]

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.profile_id} {self.get_status_display()}"

    @property
    def finished(self) -> bool:
        return self.status in (self.Status.SUCCEEDED, self.Status.FAILED)

    def claim(self) -> bool:
        """Queued → running, for exactly one taker (a Celery message may come twice)."""
        now = timezone.now()
        taken = ProvisioningRun.objects.filter(pk=self.pk, status=self.Status.QUEUED).update(
            status=self.Status.RUNNING, started_at=now
        )
        if taken == 1:
            self.status, self.started_at = self.Status.RUNNING, now
        return taken == 1

    def add_log(self, message: str, log_type: str = "information", *, progress: str = "") -> None:
        """One line in the log (and the progress text), saved at once for the screen."""
        self.log = [*self.log, log_entry(message, log_type)]
        self.progress = (progress or message)[:500]
        self.save(update_fields=["log", "progress"])

    def finish(self, status: str, progress: str) -> None:
        self.status = status
        self.progress = progress[:500]
        self.finished_at = timezone.now()
        self.save(update_fields=["status", "progress", "finished_at", "log"])


def log_entry(message: str, log_type: str = "information", timestamp: str = "") -> dict:
    return {
        "timestamp": timestamp or timezone.now().isoformat(timespec="seconds"),
        "type": log_type,
        "message": message,
    }


# --- alerts (connector/alerts.py evaluates them) ------------------------------------------------


def split_recipients(text: str) -> list[str]:
    """'ops@example.com, oncall@example.com' → both addresses (commas, semicolons or spaces)."""
    return [address for address in text.replace(";", ",").replace(" ", ",").split(",") if address]


def validate_recipients(text: str) -> None:
    for address in split_recipients(text):
        try:
            validate_email(address)
        except ValidationError:
            raise ValidationError(f"'{address}' is not an e-mail address.") from None


class AlertSettings(models.Model):
    """Where a profile's alerts go, and when a queue counts as being in trouble."""

    profile = models.OneToOneField(
        "setup_params.Profile",
        verbose_name="profile",
        on_delete=models.CASCADE,
        related_name="alert_settings",
        help_text="The profile whose conditions are watched.",
    )
    email_recipients = models.CharField(
        "alert e-mail recipients", max_length=1000, blank=True,
        validators=[validate_recipients],
        help_text="Addresses that get an e-mail when an alert is raised or cleared, "
        "comma-separated. The mail server is the EMAIL_URL setting.",
    )
    webhook_url = models.URLField(
        "webhook URL", max_length=500, blank=True,
        help_text="Gets a POST with JSON {profile, condition, state, message, at} when an "
        "alert is raised or cleared; any 2xx answer counts as delivered.",
    )
    failures_per_hour_threshold = models.PositiveIntegerField(
        "failures per hour", default=10,
        validators=[MinValueValidator(1), MaxValueValidator(1_000_000)],
        help_text="Alert when failed records plus failed calls in the last hour reach this.",
    )
    oldest_pending_minutes = models.PositiveIntegerField(
        "oldest pending message (minutes)", default=15,
        validators=[MinValueValidator(1), MaxValueValidator(7 * 24 * 60)],
        help_text="Alert when an active profile has a message waiting to be sent longer "
        "than this.",
    )

    class Meta:
        verbose_name = "alert settings"
        verbose_name_plural = "alert settings"

    def __str__(self) -> str:
        return f"Alert settings of {self.profile}"

    def recipients(self) -> list[str]:
        return split_recipients(self.email_recipients)


class AlertStateQuerySet(models.QuerySet):
    def raised(self) -> AlertStateQuerySet:
        return self.filter(raised=True)


class AlertState(models.Model):
    """One watched condition, per profile or instance-wide: raised or clear, and whether its
    last change has reached the recipients. One alert per change, never one per evaluation."""

    profile = models.ForeignKey(
        "setup_params.Profile",
        verbose_name="profile",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="alert_states",
        help_text="Empty for conditions of the whole instance (worker and beat heartbeats).",
    )
    condition = models.CharField(
        "condition", max_length=50,
        help_text="What is watched, e.g. outage_guard:price, failures_per_hour, "
        "oldest_pending:inventory, login_limit, worker_heartbeat.",
    )
    raised = models.BooleanField("raised", default=False, help_text="True while it holds.")
    raised_at = models.DateTimeField("raised at", null=True, blank=True)
    cleared_at = models.DateTimeField("cleared at", null=True, blank=True)
    changed_at = models.DateTimeField(
        "changed at", null=True, blank=True,
        help_text="When it was last raised or cleared; a delivery is for that change only.",
    )
    last_message = models.TextField(
        "last message", blank=True, help_text="What the last alert said; never a secret."
    )
    email_pending = models.BooleanField(
        "e-mail pending", default=False,
        help_text="The last change still has to be e-mailed (tried again at each evaluation).",
    )
    webhooks_pending = models.JSONField(
        "webhooks pending", default=list, blank=True,
        help_text="Alert settings (ids) whose webhook has not answered the last change with "
        "a 2xx yet (tried again at each evaluation).",
    )
    delivery_lease_until = models.DateTimeField(
        "delivering until", null=True, blank=True,
        help_text="An evaluation is delivering the last change; others leave it alone until "
        "then.",
    )

    objects = AlertStateQuerySet.as_manager()

    class Meta:
        verbose_name = "alert state"
        constraints = [
            # NULLs are distinct in a unique index (PostgreSQL before NULLS NOT DISTINCT,
            # SQLite always): instance-wide conditions need their own constraint.
            models.UniqueConstraint(
                fields=["profile", "condition"],
                condition=Q(profile__isnull=False),
                name="one_alert_state_per_profile",
            ),
            models.UniqueConstraint(
                fields=["condition"],
                condition=Q(profile__isnull=True),
                name="one_instance_alert_state",
            ),
        ]

    def __str__(self) -> str:
        where = str(self.profile) if self.profile_id else "instance"
        return f"{where} {self.condition}: {'raised' if self.raised else 'clear'}"


class LoginLimitReport(models.Model):
    """The last time Acumatica refused a sign-in with its API Login Limit, per profile.

    Written by `connector.alerts.note_login_limit` wherever `AcumaticaLoginLimit` is caught;
    the alert holds while the last report is younger than Acumatica's session idle timeout.
    """

    profile = models.OneToOneField(
        "setup_params.Profile",
        verbose_name="profile",
        on_delete=models.CASCADE,
        related_name="login_limit_report",
    )
    seen_at = models.DateTimeField("seen at", help_text="When the limit was last hit.")
    message = models.TextField(
        "message", blank=True, help_text="What Acumatica answered; secrets are redacted."
    )

    class Meta:
        verbose_name = "Acumatica login limit report"

    def __str__(self) -> str:
        return f"{self.profile} login limit at {self.seen_at:%Y-%m-%d %H:%M:%S}"
