from __future__ import annotations

from django.db import models
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
