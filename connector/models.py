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
