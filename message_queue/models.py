"""Messages waiting for Magento, the HTTP calls made for them, and what each key last got."""

from __future__ import annotations

from datetime import timedelta

from django.db import models
from django.db.models import Q
from django.utils import timezone


class Entity(models.TextChoices):
    PRICE = "price", "Pricing"
    INVENTORY = "inventory", "Inventory"


class Direction(models.TextChoices):
    TO_MAGENTO = "to_magento", "Acumatica → Magento"
    TO_ACUMATICA = "to_acumatica", "Magento → Acumatica"


class Status(models.TextChoices):
    PENDING = "pending", "Pending"
    PROCESSING = "processing", "Processing"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"
    SUPERSEDED = "superseded", "Superseded"
    DISMISSED = "dismissed", "Dismissed"


class MessageQuerySet(models.QuerySet):
    def failed_or_skipped(self) -> MessageQuerySet:
        return self.filter(status__in=[Status.FAILED, Status.SKIPPED])


class Message(models.Model):
    # Every index below starts with the profile: a separate FK index would only slow writes.
    profile = models.ForeignKey("setup_params.Profile", on_delete=models.CASCADE,
                                related_name="messages", db_index=False)
    entity = models.CharField("entity", max_length=20, choices=Entity.choices)
    direction = models.CharField("direction", max_length=20, choices=Direction.choices,
                                 default=Direction.TO_MAGENTO)
    key = models.CharField(
        "key", max_length=255,
        help_text="SKU|store id for a price, SKU|source code for stock; coalescing is per key.",
    )
    sku = models.CharField("SKU", max_length=255)
    payload = models.JSONField("payload", help_text="The record as it will be sent.")
    source_ts = models.BigIntegerField(
        "source TimeStamp", default=0,
        help_text="Acumatica's TimeStamp (.NET ticks) of the change; larger is newer.",
    )
    status = models.CharField("status", max_length=12, choices=Status.choices,
                              default=Status.PENDING)
    attempts = models.PositiveIntegerField("attempts", default=0)
    next_attempt_at = models.DateTimeField("next attempt at", default=timezone.now)
    lease_until = models.DateTimeField("lease until", null=True, blank=True)
    last_error = models.TextField("last error", blank=True)
    last_http_status = models.PositiveSmallIntegerField("last HTTP status", null=True,
                                                        blank=True)
    source_notification_id = models.CharField("push notification id", max_length=64,
                                              blank=True)
    created_at = models.DateTimeField("created at", default=timezone.now)
    updated_at = models.DateTimeField("updated at", default=timezone.now)
    sent_at = models.DateTimeField("sent at", null=True, blank=True)
    failed_at = models.DateTimeField("failed at", null=True, blank=True)
    reprocessed_at = models.DateTimeField("reprocessed at", null=True, blank=True)
    reprocessed_by = models.CharField("reprocessed by", max_length=150, blank=True)
    dismissed_reason = models.TextField("dismissed because", blank=True)

    objects = MessageQuerySet.as_manager()

    class Meta:
        verbose_name = "message"
        constraints = [
            # Coalescing: at most one pending row per key; the receiver's upsert targets it.
            models.UniqueConstraint(
                fields=["profile", "entity", "key"],
                condition=Q(status="pending"),
                name="one_pending_message_per_key",
            ),
        ]
        indexes = [
            # The claim query: pending rows of one (profile, entity) that are due, oldest first.
            models.Index(
                fields=["profile", "entity", "next_attempt_at", "id"],
                condition=Q(status="pending"),
                name="message_claim_idx",
            ),
            # Lease recovery and "keys in flight": processing rows only.
            models.Index(
                fields=["profile", "entity", "key"],
                condition=Q(status="processing"),
                name="message_in_flight_idx",
            ),
            # Dashboard counts per status.
            models.Index(fields=["profile", "entity", "status"], name="message_status_idx"),
            # Message search by SKU (exact or prefix); no LIKE-pattern twin.
            models.Index(fields=["sku"], name="message_sku_idx"),
            # Reprocess Failed Messages: failed and skipped, newest first.
            models.Index(
                fields=["profile", "entity", "-updated_at"],
                condition=Q(status__in=["failed", "skipped"]),
                name="message_failed_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_entity_display()} {self.key} ({self.status})"


class Attempt(models.Model):
    """One HTTP call to Magento, for one or more messages."""

    profile = models.ForeignKey("setup_params.Profile", on_delete=models.CASCADE,
                                related_name="attempts")
    entity = models.CharField("entity", max_length=20, choices=Entity.choices)
    messages = models.ManyToManyField(Message, related_name="attempt_set", blank=True)
    endpoint = models.CharField("endpoint", max_length=500)
    record_count = models.PositiveIntegerField("records", default=0)
    status_code = models.PositiveSmallIntegerField("HTTP status", null=True, blank=True)
    duration_ms = models.FloatField("duration (ms)", default=0)
    ok = models.BooleanField("accepted", default=False)
    error = models.TextField("error", blank=True, help_text="Magento's answer; never a secret.")
    created_at = models.DateTimeField("when", default=timezone.now, db_index=True)

    class Meta:
        verbose_name = "attempt"
        indexes = [
            # Dashboard: sends and failures in the last hour / 24 h.
            models.Index(fields=["profile", "entity", "created_at"], name="attempt_recent_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.endpoint} → {self.status_code}"


class KeyState(models.Model):
    """The newest TimeStamp applied per key, and each warehouse's last stock quantity.

    It is what makes "an older TimeStamp never wins" hold for every entity.
    """

    profile = models.ForeignKey("setup_params.Profile", on_delete=models.CASCADE,
                                related_name="key_states")
    entity = models.CharField("entity", max_length=20, choices=Entity.choices)
    key = models.CharField("key", max_length=255)
    source_ts = models.BigIntegerField("newest TimeStamp", default=0)
    warehouse_quantities = models.JSONField(
        "warehouse quantities", default=dict, blank=True,
        help_text="Last known quantity per Acumatica warehouse mapped to this source.",
    )
    warehouse_timestamps = models.JSONField("warehouse TimeStamps", default=dict, blank=True)
    updated_at = models.DateTimeField("updated at", default=timezone.now)

    class Meta:
        verbose_name = "key state"
        constraints = [
            models.UniqueConstraint(fields=["profile", "entity", "key"], name="one_state_per_key")
        ]

    def __str__(self) -> str:
        return f"{self.entity} {self.key} @ {self.source_ts}"


class ReceivedNotification(models.Model):
    """Acumatica delivers at least once: Id + Query of every stored notification."""

    profile = models.ForeignKey("setup_params.Profile", on_delete=models.CASCADE,
                                related_name="received_notifications")
    query = models.CharField("query", max_length=100)
    notification_id = models.CharField("Id", max_length=64)
    source_ts = models.BigIntegerField("TimeStamp", default=0)
    row_count = models.PositiveIntegerField("rows", default=0)
    received_at = models.DateTimeField("received at", default=timezone.now, db_index=True)

    class Meta:
        verbose_name = "received push notification"
        constraints = [
            models.UniqueConstraint(fields=["profile", "query", "notification_id"],
                                    name="one_notification_per_id")
        ]

    def __str__(self) -> str:
        return f"{self.query} {self.notification_id}"


class OutageGuard(models.Model):
    """Per (profile, entity): tripped while Magento is unreachable or refuses us."""

    profile = models.ForeignKey("setup_params.Profile", on_delete=models.CASCADE,
                                related_name="outage_guards")
    entity = models.CharField("entity", max_length=20, choices=Entity.choices)
    tripped = models.BooleanField("tripped", default=False)
    tripped_at = models.DateTimeField("tripped at", null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField("failed calls in a row", default=0)
    last_error = models.TextField("last error", blank=True)
    updated_at = models.DateTimeField("updated at", default=timezone.now)

    class Meta:
        verbose_name = "outage guard"
        constraints = [
            models.UniqueConstraint(fields=["profile", "entity"], name="one_guard_per_entity")
        ]

    def __str__(self) -> str:
        return f"{self.profile} {self.entity}: {'tripped' if self.tripped else 'ok'}"


def long_ago():
    return timezone.now() - timedelta(days=3650)


class SenderSlot(models.Model):
    """One of *senders* run slots of a (profile, entity); it expires if its holder dies."""

    profile = models.ForeignKey("setup_params.Profile", on_delete=models.CASCADE,
                                related_name="sender_slots")
    entity = models.CharField("entity", max_length=20, choices=Entity.choices)
    number = models.PositiveSmallIntegerField("slot")
    holder = models.CharField("held by run", max_length=32, blank=True)
    expires_at = models.DateTimeField("expires at", default=long_ago)

    class Meta:
        verbose_name = "sender slot"
        constraints = [
            models.UniqueConstraint(fields=["profile", "entity", "number"], name="one_slot_number")
        ]

    def __str__(self) -> str:
        return f"{self.profile} {self.entity} slot {self.number}"


class HourlyStats(models.Model):
    """Per (profile, entity, hour): what the processors did. Kept by the processors so the
    dashboard and its chart never count the message table."""

    profile = models.ForeignKey("setup_params.Profile", on_delete=models.CASCADE,
                                related_name="hourly_stats")
    entity = models.CharField("entity", max_length=20, choices=Entity.choices)
    hour = models.DateTimeField("hour", help_text="Start of the hour (UTC).")
    calls = models.PositiveIntegerField("HTTP calls", default=0)
    sent = models.PositiveIntegerField("records sent", default=0)
    failed = models.PositiveIntegerField("records failed", default=0)
    skipped = models.PositiveIntegerField("records skipped", default=0)
    failed_calls = models.PositiveIntegerField("failed calls", default=0)
    last_sent_at = models.DateTimeField("last successful send", null=True, blank=True)
    unmapped_warehouse_rows = models.PositiveIntegerField(
        "unmapped warehouse rows", default=0,
        help_text="Stock rows the receiver skipped because no source is mapped to their "
        "warehouse.",
    )
    backlog = models.PositiveIntegerField(
        "backlog", null=True, blank=True,
        help_text="Pending messages left after the hour's last pass (the dashboard's chart).",
    )

    class Meta:
        verbose_name = "hourly statistics"
        verbose_name_plural = "hourly statistics"
        constraints = [
            models.UniqueConstraint(fields=["profile", "entity", "hour"], name="one_stats_per_hour")
        ]

    def __str__(self) -> str:
        return f"{self.profile} {self.entity} {self.hour:%Y-%m-%d %H:00}"
