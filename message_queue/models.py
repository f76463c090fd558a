"""Messages waiting for Magento, the HTTP calls made for them, and what each key last got."""

from __future__ import annotations

import json
from datetime import timedelta

from django.db import models
from django.db.models import Q
from django.utils import timezone


def json_from_cursor(value):
    """A JSON column as a raw cursor answers it: text (Django's loader on PostgreSQL, SQLite)
    or, from a driver that decodes it itself, the value already."""
    return json.loads(value) if isinstance(value, str) else value


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
    messages = models.ManyToManyField(Message, related_name="attempt_set", blank=True,
                                      through="AttemptMessage")
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


class AttemptMessage(models.Model):
    """Which messages an attempt carried: a row per message, written by every call.

    No foreign-key constraints in the database: PostgreSQL would check both keys of each of a
    batch's rows at commit, which cost more than the HTTP call. Django still deletes a
    message's links with it, and retention deletes them in the same batch.
    """

    attempt = models.ForeignKey(Attempt, on_delete=models.CASCADE, db_constraint=False,
                                db_index=False)  # the unique pair below starts with it
    message = models.ForeignKey(Message, on_delete=models.CASCADE, db_constraint=False)

    class Meta:
        db_table = "message_queue_attempt_messages"
        unique_together = [("attempt", "message")]

    def __str__(self) -> str:
        return f"attempt {self.attempt_id} → message {self.message_id}"


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


# --- Pulling from Acumatica: loads, catch-up, reconciliation (issue 9) -----------------------

from django.core.validators import MaxValueValidator, MinValueValidator  # noqa: E402


class PullSettings(models.Model):
    """Per profile: how the scheduled catch-up reads Acumatica's inquiries, and how far it got.

    The watermarks are kept per entity and in UTC: the moment each entity's last successful
    read began. The next catch-up reads rows changed after it, minus the time offset.
    """

    class Tracking(models.TextChoices):
        DATE = "date", "By LastModifiedDateTime"
        NONE = "none", "None (no scheduled catch-up)"

    profile = models.OneToOneField("setup_params.Profile", on_delete=models.CASCADE,
                                   related_name="pull_settings")
    tracking = models.CharField(
        "tracking", max_length=10, choices=Tracking.choices, default=Tracking.DATE,
        help_text="By LastModifiedDateTime: a scheduled catch-up reads the rows changed since "
        "the last one. None: only push notifications and loads started by hand.",
    )
    interval_minutes = models.PositiveIntegerField(
        "catch-up interval (minutes)", default=15,
        validators=[MinValueValidator(1), MaxValueValidator(1440)],
        help_text="How often the scheduled catch-up runs (1–1440 minutes).",
    )
    inventory_watermark = models.DateTimeField(
        "inventory watermark", null=True, blank=True,
        help_text="UTC moment the last successful read of the inventory inquiry began.",
    )
    price_watermark = models.DateTimeField(
        "price watermark", null=True, blank=True,
        help_text="UTC moment the last successful read of the price inquiry began.",
    )
    last_run_at = models.DateTimeField("last catch-up", null=True, blank=True)
    last_error = models.TextField("last catch-up error", blank=True)

    class Meta:
        verbose_name = "pull settings"
        verbose_name_plural = "pull settings"

    def __str__(self) -> str:
        return f"Pull settings of {self.profile}"

    def watermark(self, entity: str):
        return getattr(self, f"{entity}_watermark")

    def set_watermark(self, entity: str, moment) -> None:
        setattr(self, f"{entity}_watermark", moment)
        self.save(update_fields=[f"{entity}_watermark"])


class LoadRunQuerySet(models.QuerySet):
    def for_profile(self, profile) -> LoadRunQuerySet:
        return self.filter(profile=profile)

    def in_progress(self) -> LoadRunQuerySet:
        return self.filter(status__in=[LoadRun.Status.QUEUED, LoadRun.Status.RUNNING])


class LoadRun(models.Model):
    """One read of one generic inquiry into the queue: an initial load (every row) or a
    catch-up (rows changed since a moment). Its progress is saved after every stored batch,
    so the screen shows it live and a cancelled or failed run resumes from `next_skip`."""

    class Kind(models.TextChoices):
        LOAD = "load", "Initial load"
        CATCH_UP = "catch_up", "Catch-up"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        CANCELLED = "cancelled", "Cancelled"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    profile = models.ForeignKey("setup_params.Profile", on_delete=models.CASCADE,
                                related_name="load_runs", db_index=False)
    entity = models.CharField("entity", max_length=20, choices=Entity.choices)
    kind = models.CharField("kind", max_length=10, choices=Kind.choices, default=Kind.LOAD)
    status = models.CharField("status", max_length=10, choices=Status.choices,
                              default=Status.QUEUED)
    since = models.DateTimeField(
        "changed since", null=True, blank=True,
        help_text="Catch-up: rows whose LastModifiedDateTime is later than this (UTC), less "
        "the time offset. Empty: every row.",
    )
    read = models.PositiveIntegerField("rows read", default=0,
                                       help_text="Rows stored so far (through the queue).")
    total = models.PositiveIntegerField(
        "rows in all", null=True, blank=True,
        help_text="Rows the inquiry holds (counted before the second page); empty until known.",
    )
    keys_changed = models.PositiveIntegerField(
        "keys changed", default=0,
        help_text="Keys whose value was new: each became (or updated) a pending message.",
    )
    next_skip = models.PositiveIntegerField(
        "next $skip", default=0, help_text="Where a resumed run starts reading."
    )
    cancel_requested = models.BooleanField(
        "cancel requested", default=False,
        help_text="The run stops after the page it is reading; Resume continues it.",
    )
    started_by = models.CharField("started by", max_length=150, blank=True)
    created_at = models.DateTimeField("created at", default=timezone.now)
    started_at = models.DateTimeField("started at", null=True, blank=True,
                                      help_text="When reading first began.")
    resumed_at = models.DateTimeField("running since", null=True, blank=True)
    read_at_resume = models.PositiveIntegerField("rows read before this start", default=0)
    finished_at = models.DateTimeField("finished at", null=True, blank=True)
    updated_at = models.DateTimeField("updated at", default=timezone.now)
    error = models.TextField("error", blank=True)

    objects = LoadRunQuerySet.as_manager()

    class Meta:
        verbose_name = "load run"
        indexes = [
            # The Loads & reconciliation screen: a profile's runs, newest first.
            models.Index(fields=["profile", "-created_at"], name="loadrun_recent_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.entity} of {self.profile_id} ({self.status})"

    @property
    def finished(self) -> bool:
        return self.status in (self.Status.CANCELLED, self.Status.SUCCEEDED, self.Status.FAILED)

    @property
    def resumable(self) -> bool:
        return self.status in (self.Status.CANCELLED, self.Status.FAILED)

    def rate(self, now=None) -> float | None:
        """Rows per second since the run last started (None before it has read anything)."""
        if self.resumed_at is None or self.read <= self.read_at_resume:
            return None
        end = self.finished_at or now or timezone.now()
        seconds = (end - self.resumed_at).total_seconds()
        return (self.read - self.read_at_resume) / seconds if seconds > 0 else None

    def seconds_left(self, now=None) -> float | None:
        rate = self.rate(now)
        if self.finished or not rate or self.total is None:
            return None
        return max(self.total - self.read, 0) / rate

    def percent(self) -> float | None:
        if self.status == self.Status.SUCCEEDED:
            return 100.0
        if not self.total:
            return None
        return min(100.0, 100.0 * self.read / self.total)


class ReconcileRun(models.Model):
    """A reconciliation report: Acumatica's quantities and base prices against Magento's."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    profile = models.ForeignKey("setup_params.Profile", on_delete=models.CASCADE,
                                related_name="reconcile_runs", db_index=False)
    status = models.CharField("status", max_length=10, choices=Status.choices,
                              default=Status.QUEUED)
    sku_prefix = models.CharField("SKU starts with", max_length=100, blank=True,
                                  help_text="Empty: every SKU.")
    started_by = models.CharField("started by", max_length=150, blank=True)
    created_at = models.DateTimeField("created at", default=timezone.now)
    finished_at = models.DateTimeField("finished at", null=True, blank=True)
    skus_compared = models.PositiveIntegerField("SKUs compared", default=0)
    differences_found = models.PositiveIntegerField("differences", default=0)
    note = models.TextField("note", blank=True, help_text="What was not compared, and why.")
    error = models.TextField("error", blank=True)

    class Meta:
        verbose_name = "reconciliation report"
        indexes = [
            # The reconciliation screen: a profile's last report.
            models.Index(fields=["profile", "-created_at"], name="reconcilerun_recent_idx"),
        ]

    def __str__(self) -> str:
        return f"Reconciliation of {self.profile_id} on {self.created_at:%Y-%m-%d %H:%M}"

    @property
    def finished(self) -> bool:
        return self.status in (self.Status.SUCCEEDED, self.Status.FAILED)


class ReconcileDifference(models.Model):
    """One value that differs between Acumatica and Magento (or a SKU one side lacks)."""

    class Field(models.TextChoices):
        PRICE = "price", "Price"
        QUANTITY = "quantity", "Quantity"

    class Kind(models.TextChoices):
        DIFFERENT = "different", "Different"
        MISSING_IN_MAGENTO = "missing_in_magento", "Not in Magento"
        MISSING_IN_ACUMATICA = "missing_in_acumatica", "Not in Acumatica"

    run = models.ForeignKey(ReconcileRun, on_delete=models.CASCADE, related_name="differences",
                            db_index=False)
    sku = models.CharField("SKU", max_length=255)
    field = models.CharField("field", max_length=10, choices=Field.choices)
    source_code = models.CharField("source", max_length=64, blank=True,
                                   help_text="The Magento source of a quantity.")
    kind = models.CharField("kind", max_length=24, choices=Kind.choices, default=Kind.DIFFERENT)
    acumatica_value = models.DecimalField("Acumatica", max_digits=20, decimal_places=6,
                                          null=True, blank=True)
    magento_value = models.DecimalField("Magento", max_digits=20, decimal_places=6,
                                        null=True, blank=True)
    warehouses = models.JSONField(
        "warehouse quantities", default=dict, blank=True,
        help_text="The Acumatica warehouses behind a source's quantity, as read.",
    )
    source_ts = models.BigIntegerField(
        "TimeStamp of the read", default=0,
        help_text="The newest LastModifiedDateTime (.NET ticks) of the page the value was on.",
    )
    fixed_at = models.DateTimeField("correction queued at", null=True, blank=True)
    fixed_by = models.CharField("correction queued by", max_length=150, blank=True)
    fix_note = models.TextField("correction note", blank=True)

    class Meta:
        verbose_name = "reconciliation difference"
        ordering = ["sku", "field", "source_code"]
        indexes = [
            # The report's list: a run's differences by SKU.
            models.Index(fields=["run", "sku"], name="reconcilediff_run_sku_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.sku} {self.field}: {self.acumatica_value} ≠ {self.magento_value}"

    @property
    def fixable(self) -> bool:
        """Acumatica has the value and Magento the product: a correction can be sent."""
        return self.kind == self.Kind.DIFFERENT and self.acumatica_value is not None
