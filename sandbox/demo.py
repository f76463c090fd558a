"""The sandbox demo: both simulators in the web process, and the `sandbox` profile wired to them.

With `SANDBOX_ENABLED`, the web process serves a simulated Magento at `/sandbox/magento/` and
a simulated Acumatica at `/sandbox/acumatica/` (see `sandbox.views`). Both start from the
same demo catalog: Acumatica holds the items, their default prices and their stock in the
warehouses MAIN and EAST; Magento holds the same SKUs with the same prices and the same
quantities on its sources `default` and `east` (the profile maps MAIN=default, EAST=east: a
pushed quantity lands on exactly one source, so no value depends on a warehouse the
connector has not heard of yet, as a sum over several warehouses would). Initialize
publishes the connector's push notifications to the simulated Acumatica; *Simulate changes*
then changes prices and stock there, the simulator posts Acumatica's JSON to the published
addresses (the connector's receiver, over real HTTP), and the processors carry the values to
the simulated Magento.

The simulators live in memory: restarting the web process starts them again from the demo
catalog, with nothing published (Initialize again). They need what `make run` gives: one
web process (several would each hold their own simulators) that serves requests in threads
(the simulated Acumatica posts to the receiver of the same process while the Simulate
request waits for the answers).
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction

from sandbox.acumatica import (
    DEFAULT_CLIENT_GUID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_PASSWORD,
    DEFAULT_TENANT,
    DEFAULT_TIME_ZONE,
    DEFAULT_USERNAME,
    AcumaticaSimulator,
    Delivery,
)
from sandbox.magento import DEFAULT_TOKEN, MagentoSimulator
from setup_params.models import (
    AcumaticaSettings,
    MagentoSettings,
    Profile,
    QueueSettings,
    create_profile,
)

SANDBOX_PROFILE = "sandbox"
MAGENTO_MOUNT = "/sandbox/magento"
CONTROL_SIMULATE_PATH = "/sandbox/control/simulate"
ACUMATICA_MOUNT = "/sandbox/acumatica"
MAGENTO_TOKEN = DEFAULT_TOKEN
# Acumatica warehouse → Magento source, one to one (the profile's warehouse_sources).
WAREHOUSE_SOURCES = {"MAIN": "default", "EAST": "east"}
ACUMATICA_USERNAME = DEFAULT_USERNAME
ACUMATICA_PASSWORD = DEFAULT_PASSWORD
ACUMATICA_TENANT = DEFAULT_TENANT
ACUMATICA_ENDPOINT = "Default"
ACUMATICA_VERSION = "24.200.001"
# Sign-in seats of the simulated license: the worker's processors, Initialize and a Test
# Connection can hold sessions at the same time; one seat (the simulator's default) would
# make the demo show login-limit errors that are not what it is about.
ACUMATICA_API_SEATS = 4
# Queue settings for a lively demo: values reach Magento within seconds of a change.
DEMO_CHECK_PROCESS_TIME = 50
DEMO_PROCESS_SLEEP_TIME = 2
MAX_SIMULATED_CHANGES = 100
DELIVERIES_SHOWN = 20


@dataclass(frozen=True)
class DemoItem:
    sku: str
    description: str
    price: float
    stock: dict[str, float]  # warehouse → quantity on hand

    @property
    def source_quantities(self) -> dict[str, float]:
        return {WAREHOUSE_SOURCES[warehouse]: qty for warehouse, qty in self.stock.items()}


DEMO_CATALOG: tuple[DemoItem, ...] = (
    DemoItem("AALEGO500", "Lego, 500 piece set", 49.99, {"MAIN": 120, "EAST": 35}),
    DemoItem("AACOMPUT01", "Computer, desktop", 999.00, {"MAIN": 12, "EAST": 4}),
    DemoItem("AAPOWERAID", "Power aid drink", 2.50, {"MAIN": 300, "EAST": 180}),
    DemoItem("AAMACHINE1", "Espresso machine", 349.00, {"MAIN": 8, "EAST": 2}),
    DemoItem("AAPENCIL01", "Pencil, graphite HB", 0.45, {"MAIN": 2500, "EAST": 900}),
    DemoItem("AAHEADSET1", "Headset, wireless", 79.90, {"MAIN": 40, "EAST": 15}),
    DemoItem("AABACKPACK", "Backpack, 30 l", 59.00, {"MAIN": 25, "EAST": 30}),
    DemoItem("AAMONITOR2", "Monitor, 27 inch", 289.00, {"MAIN": 18, "EAST": 6}),
    DemoItem("AAKEYBOARD", "Keyboard, mechanical", 119.00, {"MAIN": 33, "EAST": 11}),
    DemoItem("AAMOUSE001", "Mouse, optical", 24.99, {"MAIN": 75, "EAST": 50}),
    DemoItem("AACHAIR001", "Office chair", 229.00, {"MAIN": 9, "EAST": 3}),
    DemoItem("AADESKLAMP", "Desk lamp, LED", 39.50, {"MAIN": 44, "EAST": 21}),
    DemoItem("AANOTEBOOK", "Notebook, A5 ruled", 3.20, {"MAIN": 800, "EAST": 410}),
    DemoItem("AAPRINTER1", "Printer, laser", 199.00, {"MAIN": 7, "EAST": 5}),
    DemoItem("AATONER001", "Toner cartridge", 69.00, {"MAIN": 60, "EAST": 24}),
    DemoItem("AACABLEUSB", "Cable, USB-C 1 m", 9.99, {"MAIN": 400, "EAST": 150}),
    DemoItem("AASPEAKER1", "Speaker, bluetooth", 89.00, {"MAIN": 22, "EAST": 14}),
    DemoItem("AAWEBCAM01", "Webcam, 1080p", 54.00, {"MAIN": 31, "EAST": 0}),
    DemoItem("CONGOLFCL1", "Golf clubs, set", 425.00, {"MAIN": 3, "EAST": 1}),
    DemoItem("CONTENT001", "Tent, two person", 149.00, {"MAIN": 10, "EAST": 12}),
)


class NothingPublished(Exception):
    """The simulated Acumatica has no push notifications yet: Initialize the sandbox first."""


@dataclass(frozen=True)
class Change:
    """One value the simulated Acumatica changed: a default price, or stock in a warehouse."""

    sku: str
    what: str  # "price" or "stock MAIN"
    old: float | None
    new: float | None

    def __str__(self) -> str:
        return f"{self.sku} {self.what}: {number_text(self.old)} → {number_text(self.new)}"


@dataclass
class SimulationResult:
    requested: int
    changes: list[Change] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)

    @property
    def delivered(self) -> int:
        return sum(1 for delivery in self.deliveries if delivery.delivered)

    @property
    def failed(self) -> int:
        return len(self.deliveries) - self.delivered

    def summary(self) -> str:
        text = (
            f"{self.requested} changes simulated in Acumatica ({len(self.changes)} values "
            f"changed); {self.delivered} of {len(self.deliveries)} push notifications delivered."
        )
        if self.failed:
            statuses = ", ".join(
                sorted({delivery.error or str(delivery.status) for delivery in self.deliveries
                        if not delivery.delivered})
            )
            text += f" Failed: {statuses}."
        return text

    def as_dict(self) -> dict[str, Any]:
        return {
            "requested": self.requested,
            "changes": [
                {"sku": change.sku, "what": change.what, "old": change.old, "new": change.new}
                for change in self.changes
            ],
            "deliveries": [delivery_row(delivery) for delivery in self.deliveries],
            "delivered": self.delivered,
            "failed": self.failed,
            "summary": self.summary(),
        }


# --- the simulators (one each per process) -------------------------------------------------

_creation_lock = threading.Lock()
_simulation_lock = threading.Lock()
_magento: MagentoSimulator | None = None
_acumatica: AcumaticaSimulator | None = None


def magento_simulator() -> MagentoSimulator:
    """The process's simulated Magento, made with the demo catalog on first use."""
    global _magento
    if _magento is None:
        with _creation_lock:
            if _magento is None:
                _magento = new_magento_simulator()
    return _magento


def acumatica_simulator() -> AcumaticaSimulator:
    """The process's simulated Acumatica, made with the demo catalog on first use."""
    global _acumatica
    if _acumatica is None:
        with _creation_lock:
            if _acumatica is None:
                _acumatica = new_acumatica_simulator()
    return _acumatica


def reset_simulators() -> None:
    """Forget both simulators: the next use starts from the demo catalog (tests)."""
    global _magento, _acumatica
    with _creation_lock:
        for simulator in (_magento, _acumatica):
            if simulator is not None:
                simulator.release_waiters()
        _magento = _acumatica = None


def new_magento_simulator() -> MagentoSimulator:
    simulator = MagentoSimulator(
        MAGENTO_TOKEN, base_url=settings.CONNECTOR_BASE_URL + MAGENTO_MOUNT + "/"
    )
    for item in DEMO_CATALOG:
        simulator.add_product(item.sku, item.price, item.source_quantities)
    return simulator


def new_acumatica_simulator() -> AcumaticaSimulator:
    # `post` stays the simulator's own (requests.post): deliveries go over real HTTP to the
    # addresses Initialize published, i.e. this connector's receiver.
    simulator = AcumaticaSimulator(
        username=ACUMATICA_USERNAME,
        password=ACUMATICA_PASSWORD,
        tenant=ACUMATICA_TENANT,
        api_seats=ACUMATICA_API_SEATS,
        catalog=False,
    )
    for item in DEMO_CATALOG:
        simulator.add_item(item.sku, item.description, item.price, item.stock)
    return simulator


# --- the sandbox profile ---------------------------------------------------------------------


def magento_url() -> str:
    return settings.CONNECTOR_BASE_URL + MAGENTO_MOUNT


def acumatica_url() -> str:
    return settings.CONNECTOR_BASE_URL + ACUMATICA_MOUNT


def ensure_sandbox_profile() -> Profile:
    """Create or update the `sandbox` profile so that it points at both simulators.

    Idempotent. The connection settings are written every time (the base URL may have
    changed since the last run); the queue settings only when the profile is created, so an
    operator's experiments with them survive a restart. The state is left alone.
    """
    with transaction.atomic():
        profile = Profile.objects.filter(name=SANDBOX_PROFILE).first()
        created = profile is None
        if profile is None:
            profile = create_profile(SANDBOX_PROFILE)
        magento, _ = MagentoSettings.objects.get_or_create(profile=profile)
        magento.magento_url = magento_url()
        magento.token = MAGENTO_TOKEN
        magento.store_code = "default"
        magento.price_store_id = 0
        magento.use_msi = True
        magento.source_code = WAREHOUSE_SOURCES["MAIN"]
        magento.save()

        profile.warehouse_sources = ",".join(
            f"{warehouse}={source}" for warehouse, source in WAREHOUSE_SOURCES.items()
        )
        profile.save(update_fields=["warehouse_sources"])

        acumatica, _ = AcumaticaSettings.objects.get_or_create(profile=profile)
        acumatica.instance_url = acumatica_url()
        acumatica.endpoint = ACUMATICA_ENDPOINT
        acumatica.version = ACUMATICA_VERSION
        acumatica.tenant = ACUMATICA_TENANT
        acumatica.auth = AcumaticaSettings.Auth.COOKIE
        acumatica.username = ACUMATICA_USERNAME
        acumatica.password = ACUMATICA_PASSWORD
        # The Connected Application too, so switching to OAuth 2.0 on the screen works.
        acumatica.client_id = f"{DEFAULT_CLIENT_GUID}@{ACUMATICA_TENANT}"
        acumatica.client_secret = DEFAULT_CLIENT_SECRET
        acumatica.time_zone = DEFAULT_TIME_ZONE
        acumatica.save()

        queue, queue_created = QueueSettings.objects.get_or_create(profile=profile)
        if created or queue_created:
            queue.check_process_time = DEMO_CHECK_PROCESS_TIME
            queue.process_sleep_time = DEMO_PROCESS_SLEEP_TIME
            queue.save(update_fields=["check_process_time", "process_sleep_time"])
    return Profile.objects.select_related(
        "magento_settings", "queue_settings", "acumatica_settings"
    ).get(pk=profile.pk)


# --- what the demo page shows, and the Simulate button ----------------------------------------


def catalog_snapshot() -> dict[str, Any]:
    """Both catalogs and the latest deliveries, as plain data for the page and its JSON.

    A Magento row's `quantities` follow `sources`; an Acumatica row's `stock` follows
    `warehouses` (lists, so the template can loop over them).

    The simulators' dicts are copied with `dict(...)`/`list(...)` (one step under the GIL)
    before they are read, so a request changing them meanwhile cannot break the iteration.
    """
    magento = magento_simulator()
    acumatica = acumatica_simulator()
    sources = sorted(set(magento.sources))
    magento_rows = [
        {
            "sku": sku,
            "price": magento.price_of(sku),
            "quantities": [magento.quantity_of(sku, source) for source in sources],
        }
        for sku in sorted(list(magento.catalog))
    ]
    items = dict(acumatica.items)
    # MAIN, EAST: the order of their Magento sources (default, east), then any other.
    order = list(WAREHOUSE_SOURCES)
    warehouses = sorted(
        {name for item in items.values() for name in list(item.stock)},
        key=lambda name: (order.index(name) if name in order else len(order), name),
    )
    acumatica_rows = [
        {
            "sku": sku,
            "price": acumatica.price_of(sku),
            "stock": [acumatica.stock_of(sku, warehouse) for warehouse in warehouses],
        }
        for sku in sorted(items)
    ]
    deliveries = list(acumatica.deliveries)[-DELIVERIES_SHOWN:]
    return {
        "sources": sources,
        "magento": magento_rows,
        "warehouses": warehouses,
        "acumatica": acumatica_rows,
        "deliveries": [delivery_row(delivery) for delivery in reversed(deliveries)],
        "published": len(acumatica.published_push_notifications()) > 0,
    }


def delivery_row(delivery: Delivery) -> dict[str, Any]:
    """One delivered (or failed) push notification as the page lists it."""
    payload = delivery.payload
    rows = payload.get("Inserted") or []
    return {
        "push_notification": delivery.push_notification,
        "address": delivery.address,
        "query": payload.get("Query", ""),
        "sent_at": (payload.get("AdditionalInfo") or {}).get("PXPerformanceInfoStartTime", ""),
        "rows": [_row_text(row) for row in rows],
        "attempts": delivery.attempts,
        "status": delivery.status,
        "error": delivery.error,
        "delivered": delivery.delivered,
    }


def simulate_changes(count: int, rng: random.Random | None = None) -> SimulationResult:
    """`count` random price or stock changes in the simulated Acumatica, pushed to the connector.

    Steps:
    1. refuse (`NothingPublished`) while no push notification is published: the changes
       would reach nobody and the two catalogs would drift apart for good;
    2. note every price and stock value;
    3. let the simulator change `count` values; it posts each change to the published
       addresses (up to five attempts each) before it returns;
    4. compare with the noted values: the changes (a random step can land on the same value).

    One simulation at a time per process, so that the comparison sees only its own changes.
    """
    if not 1 <= count <= MAX_SIMULATED_CHANGES:
        raise ValueError(f"The count must be between 1 and {MAX_SIMULATED_CHANGES}.")
    acumatica = acumatica_simulator()
    if not acumatica.published_push_notifications():
        raise NothingPublished("Initialize the sandbox profile first.")
    with _simulation_lock:
        before = _acumatica_values(acumatica)
        deliveries = acumatica.simulate_changes(count, rng)
        after = _acumatica_values(acumatica)
    changes = [
        Change(sku, what, before.get((sku, what)), value)
        for (sku, what), value in sorted(after.items())
        if before.get((sku, what)) != value
    ]
    return SimulationResult(requested=count, changes=changes, deliveries=deliveries)


def _acumatica_values(acumatica: AcumaticaSimulator) -> dict[tuple[str, str], float | None]:
    values: dict[tuple[str, str], float | None] = {}
    for sku, item in dict(acumatica.items).items():
        values[(sku, "price")] = acumatica.price_of(sku)
        for warehouse in list(item.stock):
            values[(sku, f"stock {warehouse}")] = acumatica.stock_of(sku, warehouse)
    return values


def _row_text(row: dict[str, Any]) -> str:
    sku = str(row.get("InventoryID", "")).strip()
    if "DefaultPrice" in row:
        return f"{sku} price {number_text(row['DefaultPrice'])}"
    warehouse = str(row.get("Warehouse", "")).strip()
    quantity = row.get("QtyAvailable", row.get("QtyOnHand"))
    return f"{sku} {warehouse} qty {number_text(quantity)}"


def number_text(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
