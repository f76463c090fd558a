"""A profile (one Acumatica tenant ⇄ one Magento store) and its settings."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.urls import reverse
from django.utils import timezone

from connector.crypto import secret_property

DEFAULT_PROFILE = "default"
PUSH_SECRET_BYTES = 32


def new_push_secret() -> str:
    return secrets.token_urlsafe(PUSH_SECRET_BYTES)


class Profile(models.Model):
    class State(models.TextChoices):
        NEW = "new", "New (not initialized)"
        ACTIVE = "active", "Active"
        PAUSED = "paused", "Paused"
        STOPPED = "stopped", "Stopped"

    name = models.SlugField(
        "name", max_length=50, unique=True,
        help_text="Short name used in URLs and on the command line, e.g. 'default'.",
    )
    state = models.CharField(
        "state", max_length=10, choices=State.choices, default=State.NEW,
        help_text="New and Paused store push notifications without sending; Active sends; "
        "Stopped refuses push notifications.",
    )
    state_changed_at = models.DateTimeField("state changed at", default=timezone.now)
    state_changed_by = models.CharField("state changed by", max_length=150, blank=True)

    push_secret_encrypted = models.TextField(
        "push secret (encrypted)", blank=True, editable=False,
        help_text="Acumatica sends it in the push header on every post.",
    )
    push_header_name = models.CharField(
        "push header name", max_length=100, default="X-Connector-Secret",
        help_text="The Header Name set on Acumatica's Push Notifications form.",
    )
    push_max_bytes = models.PositiveIntegerField(
        "largest push notification (bytes)", default=10 * 1024 * 1024,
        validators=[MinValueValidator(1024), MaxValueValidator(100 * 1024 * 1024)],
        help_text="A bigger body is refused with 413 before it is read.",
    )
    inventory_query = models.CharField(
        "inventory inquiry", max_length=100, default="MC-Inventory",
        help_text="The generic inquiry whose push notifications carry stock levels.",
    )
    inventory_sku_field = models.CharField("inventory SKU field", max_length=100,
                                           default="InventoryID")
    inventory_warehouse_field = models.CharField("inventory warehouse field", max_length=100,
                                                 default="Warehouse")
    inventory_qty_field = models.CharField(
        "inventory quantity field", max_length=100, default="QtyAvailable",
        help_text="Which quantity goes to Magento, e.g. QtyAvailable or QtyOnHand.",
    )
    price_query = models.CharField(
        "price inquiry", max_length=100, default="MC-Prices",
        help_text="The generic inquiry whose push notifications carry prices.",
    )
    price_sku_field = models.CharField("price SKU field", max_length=100, default="InventoryID")
    price_field = models.CharField("price field", max_length=100, default="DefaultPrice")
    warehouse_sources = models.CharField(
        "warehouses to sources", max_length=1000, default="*=default",
        help_text="Acumatica warehouse = Magento source code, comma-separated, e.g. "
        "'MAIN=default,EAST=east'; '*' maps every other warehouse. Several warehouses on "
        "one source send the sum of their quantities.",
    )
    outage_threshold = models.PositiveIntegerField(
        "outage threshold", default=5, validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text="Failed calls in a row that pause sending until Magento answers again.",
    )

    push_secret = secret_property("push_secret_encrypted")

    class Meta:
        verbose_name = "profile"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def push_path(self) -> str:
        return reverse("acumatica_push", kwargs={"profile": self.name})

    @property
    def push_url(self) -> str:
        return settings.CONNECTOR_BASE_URL + self.push_path

    def rotate_push_secret(self) -> str:
        self.push_secret = new_push_secret()
        self.save(update_fields=["push_secret_encrypted"])
        return self.push_secret

    def warehouse_source_map(self) -> dict[str, str]:
        return parse_warehouse_sources(self.warehouse_sources)


def parse_warehouse_sources(text: str) -> dict[str, str]:
    """'MAIN=default, EAST=east, *=default' → {'MAIN': 'default', 'EAST': 'east', '*': ...}."""
    mapping: dict[str, str] = {}
    for pair in text.split(","):
        if not pair.strip():
            continue
        warehouse, separator, source = pair.partition("=")
        if not separator or not warehouse.strip() or not source.strip():
            raise ValueError(
                f"'{pair.strip()}' is not WAREHOUSE=SOURCE (e.g. MAIN=default, or *=default)."
            )
        mapping[warehouse.strip()] = source.strip()
    if not mapping:
        raise ValueError("Map at least one warehouse, e.g. '*=default'.")
    return mapping


class MagentoSettings(models.Model):
    profile = models.OneToOneField(Profile, on_delete=models.CASCADE,
                                   related_name="magento_settings")
    magento_url = models.URLField(
        "Magento URL", max_length=500, blank=True,
        help_text="The store's base URL, e.g. https://shop.example.com (without /rest).",
    )
    token_encrypted = models.TextField("bearer token (encrypted)", blank=True, editable=False)
    store_code = models.CharField(
        "store code", max_length=64, default="default",
        help_text="Used in REST URLs: /rest/<store code>/V1/…",
    )
    price_store_id = models.PositiveIntegerField(
        "price store id", default=0,
        help_text="Store id sent with base prices; 0 is the global price scope.",
    )
    use_msi = models.BooleanField(
        "use MSI", default=True,
        help_text="Send stock to Multi-Source Inventory source items; off sends legacy "
        "stock items one by one.",
    )
    source_code = models.CharField(
        "MSI source code", max_length=64, default="default",
        help_text="The Magento inventory source that receives stock.",
    )
    timeout = models.PositiveIntegerField(
        "timeout (s)", default=30, validators=[MinValueValidator(1), MaxValueValidator(600)],
        help_text="Seconds to wait for Magento's answer.",
    )
    verify_tls = models.BooleanField(
        "verify TLS", default=True, help_text="Check Magento's HTTPS certificate."
    )

    token = secret_property("token_encrypted")

    class Meta:
        verbose_name = "Magento settings"
        verbose_name_plural = "Magento settings"

    def __str__(self) -> str:
        return f"Magento settings of {self.profile}"

    @property
    def has_token(self) -> bool:
        return bool(self.token_encrypted)


class QueueSettings(models.Model):
    profile = models.OneToOneField(Profile, on_delete=models.CASCADE,
                                   related_name="queue_settings")
    threshold_count = models.PositiveIntegerField(
        "threshold count", default=25, validators=[MinValueValidator(1)],
        help_text="Up to this many pending records a pass sends them one by one; above it, "
        "in batches of the batch count.",
    )
    batch_count = models.PositiveIntegerField(
        "batch count", default=20, validators=[MinValueValidator(1), MaxValueValidator(10000)],
        help_text="Records per request above the threshold. Magento's input limit, when on, "
        "refuses more than 20.",
    )
    retry_count = models.PositiveIntegerField(
        "retry count", default=3, validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text="Attempts before a message is Failed; a failed message is only sent again "
        "from Reprocess Failed Messages.",
    )
    check_process_time = models.PositiveIntegerField(
        "check process time (s)", default=50,
        validators=[MinValueValidator(1), MaxValueValidator(59)],
        help_text="How long each once-a-minute run keeps looking for new messages (1–59 s).",
    )
    process_sleep_time = models.PositiveIntegerField(
        "process sleep time (s)", default=5, validators=[MinValueValidator(1)],
        help_text="Pause between passes within a run; less than the check process time.",
    )
    senders = models.PositiveIntegerField(
        "senders", default=1, validators=[MinValueValidator(1), MaxValueValidator(16)],
        help_text="Parallel send loops per entity (1–16).",
    )

    class Meta:
        verbose_name = "queue processing settings"
        verbose_name_plural = "queue processing settings"

    def __str__(self) -> str:
        return f"Queue processing settings of {self.profile}"




class AcumaticaSettings(models.Model):
    """How the connector reaches the profile's Acumatica tenant (DESIGN.md section 9)."""

    class Endpoint(models.TextChoices):
        DEFAULT = "Default", "Default"
        MANUFACTURING = "Manufacturing", "Manufacturing"
        ECOMMERCE = "Ecommerce", "Ecommerce"

    class Auth(models.TextChoices):
        COOKIE = "cookie", "Cookie (username and password)"
        OAUTH2 = "oauth2", "OAuth 2.0"

    profile = models.OneToOneField(Profile, on_delete=models.CASCADE,
                                   related_name="acumatica_settings")
    instance_url = models.URLField(
        "instance URL", max_length=500, blank=True,
        help_text="e.g. https://erp.example.com/AcumaticaERP (without /entity/…).",
    )
    endpoint = models.CharField("endpoint", max_length=32, choices=Endpoint.choices,
                                default=Endpoint.DEFAULT)
    version = models.CharField(
        "endpoint version", max_length=20, default="24.200.001",
        help_text="e.g. 24.200.001; Test Connection lists the versions the instance offers.",
    )
    tenant = models.CharField("tenant", max_length=100, blank=True,
                              help_text="The company (tenant) name used to sign in.")
    branch = models.CharField("branch", max_length=100, blank=True)
    auth = models.CharField("authentication", max_length=10, choices=Auth.choices,
                            default=Auth.COOKIE)
    username = models.CharField("username", max_length=150, blank=True)
    password_encrypted = models.TextField("password (encrypted)", blank=True, editable=False)
    client_id = models.CharField(
        "client id", max_length=200, blank=True,
        help_text="From Connected Applications (SM303010): <GUID>@<Tenant>.",
    )
    client_secret_encrypted = models.TextField("client secret (encrypted)", blank=True,
                                               editable=False)
    scopes = models.CharField("scopes", max_length=200, default="openid api offline_access")
    access_token_encrypted = models.TextField("access token (encrypted)", blank=True,
                                              editable=False)
    refresh_token_encrypted = models.TextField("refresh token (encrypted)", blank=True,
                                               editable=False)
    token_expires_at = models.DateTimeField("access token expires at", null=True, blank=True)
    concurrency = models.PositiveIntegerField(
        "concurrency level", default=2, validators=[MinValueValidator(1), MaxValueValidator(25)],
        help_text="Most requests the connector sends to this instance at once, across all "
        "workers (1–25; the license's concurrent-request limit).",
    )
    time_zone = models.CharField("time zone", max_length=64, default="UTC",
                                 help_text="The instance's IANA time zone, e.g. Europe/Berlin.")
    time_offset = models.PositiveIntegerField(
        "time offset (s)", default=0, validators=[MaxValueValidator(3600)],
        help_text="Seconds subtracted from the watermark of catch-up reads (0–3600).",
    )
    page_size = models.PositiveIntegerField(
        "page size", default=500, validators=[MinValueValidator(1), MaxValueValidator(10000)]
    )
    batch_size = models.PositiveIntegerField(
        "batch size", default=2000, validators=[MinValueValidator(1), MaxValueValidator(10000)]
    )
    timeout = models.PositiveIntegerField(
        "timeout (s)", default=60, validators=[MinValueValidator(1), MaxValueValidator(600)]
    )

    password = secret_property("password_encrypted")
    client_secret = secret_property("client_secret_encrypted")
    access_token = secret_property("access_token_encrypted")
    refresh_token = secret_property("refresh_token_encrypted")

    class Meta:
        verbose_name = "Acumatica settings"
        verbose_name_plural = "Acumatica settings"

    def __str__(self) -> str:
        return f"Acumatica settings of {self.profile}"


def get_profile(name: str = DEFAULT_PROFILE) -> Profile:
    return Profile.objects.select_related(
        "magento_settings", "queue_settings", "acumatica_settings"
    ).get(name=name)


def create_profile(name: str) -> Profile:
    profile = Profile(name=name)
    profile.push_secret = new_push_secret()
    profile.save()
    MagentoSettings.objects.create(profile=profile)
    QueueSettings.objects.create(profile=profile)
    AcumaticaSettings.objects.create(profile=profile)
    return profile
