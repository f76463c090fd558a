"""A simulated Acumatica instance: the part the connector uses, answering as Acumatica does.

No Django here: `AcumaticaSimulator.handle()` takes a request and gives back
`(status, headers, body)`. `sandbox.server.serve()` puts it on a real socket for tests and
benchmarks; the demo mounts it under the sandbox URLs.

What it does like Acumatica (texts shared with `connector.acumatica`):
- cookie sign-in (`POST /entity/auth/login` → 204 and `ASP.NET_SessionId`, `.ASPXAUTH`,
  `UserBranch`, `Locale`, `requestid` cookies; every cookie of the session is needed) and
  sign-out; a limited number of API-user seats (`api_seats`, default 1) freed by sign-out or
  after `idle_timeout_seconds` (default 600); past the limit the sign-in fails with the
  "API Login Limit" error (`LOGIN_LIMIT_STATUS`); wrong credentials and an unknown tenant
  answer as Acumatica does;
- `GET /entity` (version and endpoints), `GET /entity/{endpoint}/{version}/StockItem` with
  `$filter` (`InventoryID eq '…'`, `LastModifiedDateTime gt datetimeoffset'…'`, joined by
  `and`), `$top`/`$skip`, `$select`, `$expand=WarehouseDetails`; values wrapped
  `{"InventoryID": {"value": "AALEGO500"}}`; an unknown endpoint or version answers 404;
- OAuth 2.0 (`/identity/connect/authorize` redirecting with `code` and `state` after an
  automatic or form sign-in; `/identity/connect/token` with the authorization_code, password
  and refresh_token grants; each refresh token is used once and replaced);
- the Customization API (import, publishBegin, publishEnd after `publish_polls` polls,
  getPublished; importing no content removes the project; `fail_next_publish()`), and after
  a publish, the generic inquiries and push notifications found in the projects'
  `project.xml` (see `parse_project_xml` for the element names);
- OData for the published inquiries (`GET /t/{tenant}/api/odata/gi/{name}`) over a small
  catalog: MC-Inventory rows (item × warehouse) and MC-Prices rows (item), with `$filter`
  (comparisons joined by `and`, `startswith(Field,'x')`), `$orderby`, `$top`/`$skip` and
  `$select`; each row's LastModifiedDateTime moves when it changes (stock: the warehouse's);
- a push-notification sender: `change_stock`, `change_price`, `simulate_changes` update the
  catalog and POST Acumatica's JSON to every active push notification of the changed
  inquiry, with its header; at most five attempts, then `failed_deliveries` (SM502000);
- faults: latency (`latency_ms`), 500/503, an HTML page, 429, a dropped connection, a hang,
  a 401; `max_concurrent_seen` is the most requests it had in progress at once.

Where the public documentation leaves a detail open (the login limit's status, the
PushNotification item's XML), the constants and `parse_project_xml` hold the choice in one
place, so that a real trace or export can replace it.
"""

from __future__ import annotations

import base64
import binascii
import html
import io
import json
import random
import re
import secrets
import time
import uuid
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode
from zoneinfo import ZoneInfo

import requests

from connector.acumatica import (
    GENERIC_ERROR_MESSAGE,
    INVALID_CREDENTIALS_MESSAGE,
    LOGIN_LIMIT_TEXT,
    NO_PUBLISHED_PROJECTS_MESSAGE,
    NO_RESOURCE_MESSAGE,
    UNDEFINED_COMPANY_EXCEPTION,
    UNDEFINED_COMPANY_MESSAGE,
    datetime_to_ticks,
    format_datetimeoffset,
)
from sandbox.magento import DropConnection
from sandbox.recording import RecordingSimulator

# --- the choices the public documentation leaves open (one place each) -----------------------

# A sign-in past the license's API-user seats. Acumatica's REST documentation lists 429 for
# it; instances answer 500 with PX.Data.PXException "API Login Limit" (the official C# client
# looks for that text in any error answer, whatever the status). We answer 500, the form an
# integration meets in the field; the client treats both alike.
LOGIN_LIMIT_STATUS = 500
# A wrong user name or password, and an unknown tenant: 500 with PX.Data's exceptions.
INVALID_CREDENTIALS_STATUS = 500
UNKNOWN_TENANT_STATUS = 500
# Push notifications: "Acumatica ERP makes at most five attempts to send a push notification
# … If Acumatica ERP cannot send a notification, it … displays this notification on the
# Process Push Notifications (SM502000) form."
MAX_DELIVERY_ATTEMPTS = 5
# ASP.NET Web API's answer to a request without a valid session or token.
NOT_AUTHORIZED_MESSAGE = "Authorization has been denied for this request."
NO_ENTITY_MESSAGE = "No entity satisfies the condition."
INSUFFICIENT_RIGHTS_MESSAGE = (
    "You have insufficient rights to access the object (CustomizationApi)."
)
TENANT_AND_COMPANY_MESSAGE = (
    "The company and tenant parameters cannot be specified at the same time."
)

DEFAULT_USERNAME = "admin"
DEFAULT_PASSWORD = "sandbox-acumatica-password"
DEFAULT_TENANT = "MyStore"
DEFAULT_BRANCH = "MYSTORE"
DEFAULT_CLIENT_GUID = "9B6B0D52-3C4A-4E0B-8F0D-2A1C5E7B9D31"
DEFAULT_CLIENT_SECRET = "sandbox-acumatica-client-secret"
DEFAULT_API_SEATS = 1
DEFAULT_IDLE_TIMEOUT_SECONDS = 600.0
DEFAULT_TOKEN_LIFETIME_SECONDS = 3600
DEFAULT_CODE_LIFETIME_SECONDS = 300
DEFAULT_PUBLISH_POLLS = 2
DEFAULT_TIME_ZONE = "America/New_York"
DEFAULT_BUILD_VERSION = "24.200.0198"
DEFAULT_HANG_SECONDS = 60.0
DEFAULT_DELIVERY_TIMEOUT = 10.0
DEFAULT_ENDPOINTS: tuple[tuple[str, str], ...] = (
    ("Default", "22.200.001"),
    ("Default", "23.200.001"),
    ("Default", "24.200.001"),
    ("Default", "25.200.001"),
    ("Ecommerce", "24.200.001"),
    ("Manufacturing", "24.200.001"),
)
DEFAULT_WAREHOUSES = ("MAIN", "WHOLESALE", "RETAIL")
FAULT_KINDS = ("503", "500", "html", "429", "drop", "timeout", "401")

# The connector's inquiries and the rows each kind shows.
INVENTORY_INQUIRY = "MC-Inventory"
PRICES_INQUIRY = "MC-Prices"
KIND_INVENTORY = "inventory"
KIND_PRICES = "prices"
INQUIRY_FIELDS = {
    KIND_INVENTORY: (
        "InventoryID",
        "Warehouse",
        "QtyAvailable",
        "QtyOnHand",
        "LastModifiedDateTime",
    ),
    KIND_PRICES: ("InventoryID", "DefaultPrice", "LastModifiedDateTime"),
}
# Tables in a GI's GITable rows that tell which kind of rows it shows.
INVENTORY_TABLES = ("INSiteStatus", "INLocationStatus", "INSiteStatusByCostCenter")
PRICE_TABLES = ("InventoryItem", "ARSalesPrice", "InventoryItemCurySettings")

JSON_HEADERS = {"Content-Type": "application/json; charset=utf-8"}
HTML_HEADERS = {"Content-Type": "text/html; charset=utf-8"}
PROXY_503_PAGE = (
    "<html><head><title>503 Service Unavailable</title></head><body><h1>Service Unavailable"
    "</h1><p>The service is unavailable.</p></body></html>"
)
PLAIN_SITE_PAGE = (
    "<!doctype html><html><head><title>Welcome to nginx!</title></head><body><h1>Welcome to "
    "nginx!</h1><p>If you see this page, the web server is installed and working.</p>"
    "</body></html>"
)
NOT_FOUND_PAGE = (
    "<!DOCTYPE html><html><head><title>404 - File or directory not found.</title></head>"
    "<body><h2>404 - File or directory not found.</h2><h3>The resource you are looking for "
    "might have been removed, had its name changed, or is temporarily unavailable.</h3>"
    "</body></html>"
)

PostCallable = Callable[[str, bytes, dict[str, str]], int]


class Headers(dict):
    """Answer headers that may repeat (several `Set-Cookie`): `items()` yields every pair."""

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        self.pairs = list(pairs)
        super().__init__(self.pairs)

    def items(self):  # type: ignore[override]
        return list(self.pairs)

    def get_all(self, name: str) -> list[str]:
        return [value for key, value in self.pairs if key.lower() == name.lower()]


@dataclass
class LoggedRequest:
    method: str
    path: str
    headers: dict[str, str]
    json_body: Any
    status: int | None  # None: the connection was dropped without an answer
    response_json: Any = None


@dataclass
class WarehouseStock:
    qty_on_hand: float
    last_modified: datetime
    qty_allocated: float = 0.0

    @property
    def qty_available(self) -> float:
        return self.qty_on_hand - self.qty_allocated


@dataclass
class Item:
    inventory_id: str
    description: str
    default_price: float
    last_modified: datetime  # InventoryItem's: price and description changes, not stock
    price_modified: datetime
    stock: dict[str, WarehouseStock] = field(default_factory=dict)
    item_status: str = "Active"
    note_id: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass
class ApiSession:
    session_id: str
    auth_cookie: str
    username: str
    tenant: str
    branch: str
    last_seen: float


@dataclass
class OAuthApp:
    client_id: str
    secret: str
    redirect_uris: list[str] = field(default_factory=list)


@dataclass
class Project:
    name: str
    description: str
    level: int
    content: bytes


@dataclass
class PublishedInquiry:
    name: str
    design_id: str = ""
    kind: str | None = None
    exposed_via_odata: bool = True


@dataclass
class PushNotificationDefinition:
    name: str
    address: str
    header_name: str
    header_value: str
    active: bool
    inquiry: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "address": self.address,
            "header_name": self.header_name,
            "header_value": self.header_value,
            "active": self.active,
            "inquiry": self.inquiry,
        }


@dataclass
class ParsedProject:
    inquiries: list[PublishedInquiry] = field(default_factory=list)
    push_notifications: list[PushNotificationDefinition] = field(default_factory=list)


@dataclass
class Delivery:
    """One push notification sent to one destination (with up to five attempts)."""

    push_notification: str
    address: str
    payload: dict[str, Any]
    headers: dict[str, str]
    attempts: int = 0
    status: int | None = None
    error: str = ""
    delivered: bool = False


@dataclass
class _Publication:
    names: list[str]
    merge: bool
    only_validation: bool
    polls_left: int
    log: list[dict[str, str]]
    failure: list[str] | None = None
    finished: bool = False
    failed: bool = False


# --- project.xml ------------------------------------------------------------------------------


def _local(tag: Any) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _attribute(element: ET.Element, *names: str) -> str | None:
    folded = {key.lower(): value for key, value in element.attrib.items()}
    for name in names:
        if name.lower() in folded:
            return folded[name.lower()]
    return None


def _flag(value: str | None, default: bool = True) -> bool:
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def _inquiry_kind(name: str, tables: Sequence[str]) -> str | None:
    short = [table.rsplit(".", 1)[-1] for table in tables]
    if any(table in INVENTORY_TABLES for table in short):
        return KIND_INVENTORY
    if any(table in PRICE_TABLES for table in short):
        return KIND_PRICES
    lowered = name.lower()
    if "price" in lowered:
        return KIND_PRICES
    if "inventory" in lowered or "stock" in lowered or "availab" in lowered:
        return KIND_INVENTORY
    return None


def parse_project_xml(content: bytes) -> ParsedProject:
    """The generic inquiries and push notifications of a customization project's project.xml.

    Tolerant: unknown elements are skipped, names match case-insensitively. What it reads
    (the Django side generates these items):

        <Customization level="0" description="…" product-version="24.200">
          <GenericInquiryScreen>                       Acumatica's GI item (as exported)
            <data-set><data><GIDesign>
              <row DesignID="<guid>" Name="MC-Inventory" ExposeViaOData="1">
                <GITable Alias="s" Name="PX.Objects.IN.INSiteStatus" />   (tells the kind)
          <PushNotification>                           one push notification definition
            <data-set><data><PushNotificationsHook>
              <row HookId="<guid>" Name="MC-Inventory" Type="HTTP" Address="https://…"
                   HeaderName="X-…" HeaderValue="…" Active="1">
                <PushNotificationsSource DesignID="<guid>" IsActive="1" />   or InquiryName="…"

    A GI's kind (inventory or prices rows) comes from its tables (INSiteStatus… → inventory;
    InventoryItem, ARSalesPrice → prices), else from its name. `ExposeViaOData="0"` hides it
    from OData. A hook row may also name its inquiry directly (`Inquiry="MC-Prices"`).
    Sources name their inquiry by DesignID (resolved against every published GI) or by name.
    """
    root = ET.fromstring(content)
    parsed = ParsedProject()
    for element in root.iter():
        if _local(element.tag).lower() != "gidesign":
            continue
        for row in element:
            name = _attribute(row, "Name") or ""
            if _local(row.tag).lower() != "row" or not name:
                continue
            tables = [
                _attribute(table, "Name") or ""
                for table in row.iter()
                if _local(table.tag).lower() == "gitable"
            ]
            parsed.inquiries.append(
                PublishedInquiry(
                    name=name,
                    design_id=(_attribute(row, "DesignID") or "").lower(),
                    kind=_inquiry_kind(name, tables),
                    exposed_via_odata=_flag(_attribute(row, "ExposeViaOData")),
                )
            )
    hooks = [e for e in root.iter() if _local(e.tag).lower() == "pushnotificationshook"]
    if hooks:
        rows = [row for hook in hooks for row in hook if _local(row.tag).lower() == "row"]
    else:  # no data-set: any element under a push-notification item that has an Address
        items = [e for e in root.iter() if "pushnotification" in _local(e.tag).lower()]
        seen: set[int] = set()
        rows = []
        for item in items:
            for row in item.iter():
                if _attribute(row, "Address") and id(row) not in seen:
                    seen.add(id(row))
                    rows.append(row)
    for row in rows:
        parsed.push_notifications.extend(_hook_definitions(row))
    return parsed


def _hook_definitions(row: ET.Element) -> list[PushNotificationDefinition]:
    address = _attribute(row, "Address", "Url") or ""
    if not address:
        return []
    name = _attribute(row, "Name", "DestinationName", "HookName") or ""
    active = _flag(_attribute(row, "Active", "IsActive"))
    base = {
        "name": name,
        "address": address,
        "header_name": _attribute(row, "HeaderName") or "",
        "header_value": _attribute(row, "HeaderValue") or "",
    }
    inquiries: list[tuple[str, bool]] = []
    direct = _attribute(row, "Inquiry", "InquiryName", "Query", "DesignName")
    if direct:
        inquiries.append((direct, True))
    for source in row.iter():
        if source is row or "source" not in _local(source.tag).lower():
            continue
        reference = _attribute(source, "InquiryName", "DesignName", "Inquiry", "DesignID")
        if reference:
            inquiries.append((reference, _flag(_attribute(source, "IsActive", "Active"))))
    return [
        PushNotificationDefinition(**base, active=active and source_active, inquiry=reference)
        for reference, source_active in inquiries
    ]


# --- the simulator ----------------------------------------------------------------------------


class AcumaticaSimulator(RecordingSimulator):
    """Thread-safe: the server calls `handle()` from many threads; tests poke it from theirs."""

    FAULT_KINDS = FAULT_KINDS

    def __init__(
        self,
        *,
        username: str = DEFAULT_USERNAME,
        password: str = DEFAULT_PASSWORD,
        tenant: str = DEFAULT_TENANT,
        branch: str = DEFAULT_BRANCH,
        api_seats: int = DEFAULT_API_SEATS,
        idle_timeout_seconds: float = DEFAULT_IDLE_TIMEOUT_SECONDS,
        endpoints: Sequence[tuple[str, str]] = DEFAULT_ENDPOINTS,
        build_version: str = DEFAULT_BUILD_VERSION,
        time_zone: str = DEFAULT_TIME_ZONE,
        client_secret: str = DEFAULT_CLIENT_SECRET,
        token_lifetime_seconds: int = DEFAULT_TOKEN_LIFETIME_SECONDS,
        publish_polls: int = DEFAULT_PUBLISH_POLLS,
        clock: Callable[[], float] = time.time,
        post: PostCallable | None = None,
        catalog: bool = True,
    ) -> None:
        super().__init__()
        self.tenant = tenant
        self.tenants: set[str] = {tenant}
        self.branch = branch
        self.users: dict[str, str] = {username: password}
        self.customizers: set[str] = {username}
        self.default_user = username
        self.api_seats = api_seats
        self.idle_timeout_seconds = idle_timeout_seconds
        self.endpoints = list(endpoints)
        self.build_version = build_version
        self.zone = ZoneInfo(time_zone)
        self.token_lifetime_seconds = token_lifetime_seconds
        self.publish_polls = publish_polls
        self.publish_drops_sessions = True  # the website restarts when a publish completes
        self.oauth_auto_approve = True
        self.clock = clock
        self.post: PostCallable = post or self._requests_post
        self.delivery_retry_seconds = 0.0
        self.delivery_timeout = DEFAULT_DELIVERY_TIMEOUT
        self.pad_keys = True
        self.latency_ms = 0.0
        self.hang_seconds = DEFAULT_HANG_SECONDS
        self.login_attempts = 0
        self.max_concurrent_seen = 0
        self.client_id = f"{DEFAULT_CLIENT_GUID}@{tenant}"
        self.oauth_apps: dict[str, OAuthApp] = {
            self.client_id: OAuthApp(self.client_id, client_secret)
        }
        self.items: dict[str, Item] = {}
        self.projects: dict[str, Project] = {}
        self.published: list[str] = []
        self.deliveries: list[Delivery] = []
        self.failed_deliveries: list[Delivery] = []
        self._in_progress = 0
        self._sessions: dict[str, ApiSession] = {}
        self._codes: dict[str, dict[str, Any]] = {}
        self._access_tokens: dict[str, dict[str, Any]] = {}
        self._refresh_tokens: dict[str, dict[str, Any]] = {}
        self._publication: _Publication | None = None
        self._publish_failure: list[str] | None = None
        self._inquiries: dict[str, PublishedInquiry] = {}
        self._push_notifications: list[PushNotificationDefinition] = []
        self._last_ticks = 0
        # Bumped by every change to `items` (add_item, change_stock, change_price): the OData
        # answers' sorted rows are cached per version.
        self._catalog_version = 0
        self._odata_cache: dict[tuple[str, tuple[tuple[str, bool], ...]], tuple[int, list]] = {}
        if catalog:
            self.add_item("AALEGO500", "Lego, 500 piece set", 49.99, {"MAIN": 1999, "RETAIL": 40})
            self.add_item("AACOMPUT01", "Computer, desktop", 999.0, {"MAIN": 12, "WHOLESALE": 5})
            self.add_item("AAPOWERAID", "Power aid drink", 2.5, {"MAIN": 300})
            self.add_item("CONGOLFCL1", "Golf clubs, set", 425.0, {"RETAIL": 3})

    # -- setup and inspection (tests, demo) -------------------------------------------------

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def add_item(
        self,
        inventory_id: str,
        description: str = "",
        price: float = 10.0,
        stock: Mapping[str, float] | None = None,
    ) -> None:
        with self._lock:
            moment = self.now()
            self.items[inventory_id] = Item(
                inventory_id=inventory_id,
                description=description or inventory_id,
                default_price=float(price),
                last_modified=moment,
                price_modified=moment,
                stock={
                    warehouse: WarehouseStock(float(qty), moment)
                    for warehouse, qty in (stock or {}).items()
                },
            )
            self._catalog_version += 1

    def add_user(self, username: str, password: str, *, customizer: bool = False) -> None:
        with self._lock:
            self.users[username] = password
            if customizer:
                self.customizers.add(username)

    def add_oauth_client(
        self, client_id: str, secret: str, redirect_uris: Sequence[str] = ()
    ) -> None:
        with self._lock:
            self.oauth_apps[client_id] = OAuthApp(client_id, secret, list(redirect_uris))

    def register_redirect_uri(self, redirect_uri: str, client_id: str | None = None) -> None:
        """Add a Redirect URI on the Connected Application (none listed: any is accepted)."""
        with self._lock:
            self.oauth_apps[client_id or self.client_id].redirect_uris.append(redirect_uri)

    @property
    def client_secret(self) -> str:
        return self.oauth_apps[self.client_id].secret

    @property
    def seats_in_use(self) -> int:
        with self._lock:
            self._purge_idle()
            return len(self._sessions)

    def expire_sessions(self) -> None:
        """Every API session ends (idle timeout, a restart): the next call answers 401."""
        with self._lock:
            self._sessions.clear()

    def revoke_access_tokens(self) -> None:
        """Every access token stops working (refresh tokens stay valid)."""
        with self._lock:
            self._access_tokens.clear()

    def fail_next_publish(self, messages: Sequence[str] = ("Compilation failed.",)) -> None:
        """The next publish ends with isFailed and these error messages in its log."""
        with self._lock:
            self._publish_failure = list(messages)

    def published_inquiries(self) -> list[str]:
        """The generic inquiries of the published projects, by name."""
        with self._lock:
            return [inquiry.name for inquiry in self._inquiries.values()]

    def published_push_notifications(self) -> list[dict[str, Any]]:
        """The published projects' push notifications, one dict per (definition, inquiry).

        Keys: name, address, header_name, header_value, active, inquiry.
        """
        with self._lock:
            return [definition.as_dict() for definition in self._push_notifications]

    def stock_of(self, inventory_id: str, warehouse: str) -> float | None:
        with self._lock:
            item = self.items.get(inventory_id)
            stock = item.stock.get(warehouse) if item else None
            return stock.qty_on_hand if stock else None

    def price_of(self, inventory_id: str) -> float | None:
        with self._lock:
            item = self.items.get(inventory_id)
            return item.default_price if item else None

    def reset_log(self) -> None:
        with self._lock:
            super().reset_log()
            self.max_concurrent_seen = 0
            self.login_attempts = 0

    # -- push notifications (the sender) ------------------------------------------------------

    def change_stock(
        self, inventory_id: str, warehouse: str, qty: float, *, allocated: float | None = None
    ) -> list[Delivery]:
        """Set an item's quantity on hand in a warehouse; notify MC-Inventory's subscribers."""
        with self._lock:
            item = self._item(inventory_id)
            stock = item.stock.get(warehouse)
            old_row = self._inventory_row(item, warehouse) if stock else None
            if stock is None:
                stock = item.stock[warehouse] = WarehouseStock(0.0, self.now())
            stock.qty_on_hand = float(qty)
            if allocated is not None:
                stock.qty_allocated = float(allocated)
            stock.last_modified = self.now()
            self._catalog_version += 1
            new_row = self._inventory_row(item, warehouse)
            timestamp = self._next_timestamp()
        return self._notify(KIND_INVENTORY, [new_row], [old_row] if old_row else [], timestamp)

    def change_price(self, inventory_id: str, price: float) -> list[Delivery]:
        """Set an item's default price; notify MC-Prices' subscribers."""
        with self._lock:
            item = self._item(inventory_id)
            old_row = self._price_row(item)
            item.default_price = float(price)
            item.last_modified = item.price_modified = self.now()
            self._catalog_version += 1
            new_row = self._price_row(item)
            timestamp = self._next_timestamp()
        return self._notify(KIND_PRICES, [new_row], [old_row], timestamp)

    def simulate_changes(self, count: int, rng: random.Random | None = None) -> list[Delivery]:
        """`count` random stock or price changes over the catalog; the deliveries they made."""
        rng = rng or random.Random()
        deliveries: list[Delivery] = []
        for _ in range(count):
            with self._lock:
                item = self.items[rng.choice(sorted(self.items))]
                warehouses = sorted(item.stock) or list(DEFAULT_WAREHOUSES)
                warehouse = rng.choice(warehouses)
                stock = item.stock.get(warehouse)
                current_qty = stock.qty_on_hand if stock else 0.0
                current_price = item.default_price
            if rng.random() < 0.5:
                qty = max(0.0, current_qty + rng.randint(-5, 10))
                deliveries += self.change_stock(item.inventory_id, warehouse, qty)
            else:
                price = max(0.01, round(current_price * rng.uniform(0.9, 1.1), 2))
                deliveries += self.change_price(item.inventory_id, price)
        return deliveries

    def resend_failed(self) -> list[Delivery]:
        """Send the failed notifications again (SM502000's Send All); failures stay listed."""
        with self._lock:
            failed, self.failed_deliveries = self.failed_deliveries, []
        for delivery in failed:
            delivery.attempts = 0
            self._deliver(delivery)
        return failed

    def _notify(
        self,
        kind: str,
        inserted: list[dict[str, Any]],
        deleted: list[dict[str, Any]],
        timestamp: int,
    ) -> list[Delivery]:
        with self._lock:
            targets = [
                (definition, self._inquiries[definition.inquiry.lower()])
                for definition in self._push_notifications
                if definition.active
                and definition.inquiry.lower() in self._inquiries
                and self._inquiries[definition.inquiry.lower()].kind == kind
            ]
            started = self.now().astimezone(self.zone).strftime("%m/%d/%Y %H:%M:%S")
        transaction_id = str(uuid.uuid4())
        deliveries = []
        for definition, inquiry in targets:
            payload = {
                "Inserted": [self._padded(row, "Warehouse") for row in inserted],
                "Deleted": [self._padded(row, "InventoryID") for row in deleted],
                "Query": inquiry.name,
                "CompanyId": self.tenant,
                "Id": transaction_id,
                "TimeStamp": timestamp,
                "AdditionalInfo": {"PXPerformanceInfoStartTime": started},
            }
            headers = {"Content-Type": "application/json"}
            if definition.header_name:
                headers[definition.header_name] = definition.header_value
            delivery = Delivery(definition.name, definition.address, payload, headers)
            self._deliver(delivery)
            deliveries.append(delivery)
        return deliveries

    def _deliver(self, delivery: Delivery) -> None:
        body = json.dumps(delivery.payload).encode()
        while delivery.attempts < MAX_DELIVERY_ATTEMPTS:
            delivery.attempts += 1
            try:
                delivery.status = int(self.post(delivery.address, body, dict(delivery.headers)))
                delivery.error = "" if 200 <= delivery.status < 300 else f"HTTP {delivery.status}"
            except Exception as error:  # noqa: BLE001 - any failure is a failed attempt
                delivery.status, delivery.error = None, f"{type(error).__name__}: {error}"
            if delivery.status is not None and 200 <= delivery.status < 300:
                delivery.delivered = True
                break
            if delivery.attempts < MAX_DELIVERY_ATTEMPTS and self.delivery_retry_seconds:
                time.sleep(self.delivery_retry_seconds)
        with self._lock:
            if not any(known is delivery for known in self.deliveries):
                self.deliveries.append(delivery)
            if not delivery.delivered:
                self.failed_deliveries.append(delivery)

    def _requests_post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        return requests.post(
            url, data=body, headers=headers, timeout=self.delivery_timeout
        ).status_code

    def _padded(self, row: dict[str, Any], key: str) -> dict[str, Any]:
        # Acumatica sends char key columns as stored, trailing spaces and all ("MAIN ").
        if not self.pad_keys or key not in row:
            return dict(row)
        return {**row, key: f"{row[key]} "}

    def _next_timestamp(self) -> int:
        ticks = datetime_to_ticks(self.now())
        self._last_ticks = max(ticks, self._last_ticks + 1)
        return self._last_ticks

    # -- the API ----------------------------------------------------------------------------

    def handle(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        """Answer one request; `path` is everything after the server's root.

        Raises `DropConnection` when the connection must close without an answer.
        """
        method = method.upper()
        with self._lock:
            self._in_progress += 1
            self.max_concurrent_seen = max(self.max_concurrent_seen, self._in_progress)
        status: int | None = None
        answer = b""
        try:
            status, answer_headers, answer = self._answer(method, path, headers, body)
            return status, answer_headers, answer
        finally:
            entry = LoggedRequest(
                method, path, _logged_headers(headers), _logged_body(body), status, _loads(answer)
            )
            with self._lock:
                self._in_progress -= 1
                self._log.append(entry)

    def _answer(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        if self.latency_ms:
            time.sleep(self.latency_ms / 1000)
        fault = self._take_fault()
        if fault is not None:
            return self._fault(fault)
        route, _, query = path.partition("?")
        params = {
            key: values[-1] for key, values in parse_qs(query, keep_blank_values=True).items()
        }
        lowered = route.lower().rstrip("/")
        host = _header(headers, "Host") or "acumatica.test"
        base = f"http://{host}"

        if lowered == "/entity/auth/login" and method == "POST":
            return self._login(body)
        if lowered == "/entity/auth/logout" and method == "POST":
            return self._logout(headers)
        if lowered == "/entity" and method == "GET":
            return self._root(base)
        if lowered.startswith("/entity/") and method == "GET":
            return self._entity(route, params, headers, base)
        if lowered == "/identity/.well-known/openid-configuration":
            return self._discovery(base)
        if lowered == "/identity/connect/authorize":
            form = _form(body) if method == "POST" else {}
            return self._authorize(method, {**params, **form})
        if lowered == "/identity/connect/token" and method == "POST":
            return self._token(_form(body), headers)
        match = re.fullmatch(r"/t/([^/]+)/api/odata/gi/([^/]+)", route, re.IGNORECASE)
        if match and method == "GET":
            return self._odata(unquote(match[1]), unquote(match[2]), params, headers, base)
        match = re.fullmatch(r"/customizationapi/(\w+)", lowered)
        if match and method == "POST":
            return self._customization(match[1], body, headers)
        return 404, dict(HTML_HEADERS), NOT_FOUND_PAGE.encode()

    def _fault(self, kind: str) -> tuple[int, dict[str, str], bytes]:
        if kind == "drop":
            raise DropConnection
        if kind == "timeout":
            with self._lock:
                release = self._release
            release.wait(self.hang_seconds)
            raise DropConnection
        if kind == "503":
            return 503, dict(HTML_HEADERS), PROXY_503_PAGE.encode()
        if kind == "500":
            return _exception(500, "Object reference not set to an instance of an object.")
        if kind == "html":
            return 200, dict(HTML_HEADERS), PLAIN_SITE_PAGE.encode()
        if kind == "429":
            return _json(429, {"message": "The request has been declined: too many requests."})
        return _json(401, {"message": NOT_AUTHORIZED_MESSAGE})

    # -- sign-in and sessions -----------------------------------------------------------------

    def _login(self, body: bytes) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            self.login_attempts += 1
            credentials = _loads(body)
            if not isinstance(credentials, dict):
                return _json(400, {"message": "The request is invalid."})
            if credentials.get("tenant") and credentials.get("company"):
                return _exception(500, TENANT_AND_COMPANY_MESSAGE)
            tenant = str(credentials.get("tenant") or credentials.get("company") or "")
            if tenant and tenant.lower() not in {name.lower() for name in self.tenants}:
                return _exception(
                    UNKNOWN_TENANT_STATUS, UNDEFINED_COMPANY_MESSAGE, UNDEFINED_COMPANY_EXCEPTION
                )
            if not tenant and len(self.tenants) > 1:
                return _exception(
                    UNKNOWN_TENANT_STATUS, UNDEFINED_COMPANY_MESSAGE, UNDEFINED_COMPANY_EXCEPTION
                )
            username = str(credentials.get("name") or "")
            if username not in self.users or self.users[username] != credentials.get("password"):
                return _exception(INVALID_CREDENTIALS_STATUS, INVALID_CREDENTIALS_MESSAGE)
            self._purge_idle()
            if len(self._sessions) >= self.api_seats:
                return _exception(LOGIN_LIMIT_STATUS, LOGIN_LIMIT_TEXT)
            session = ApiSession(
                session_id=secrets.token_hex(12),
                auth_cookie=secrets.token_hex(32).upper(),
                username=username,
                tenant=tenant or next(iter(self.tenants)),
                branch=str(credentials.get("branch") or self.branch),
                last_seen=self.clock(),
            )
            self._sessions[session.session_id] = session
        offset = self.now().astimezone(self.zone).utcoffset() or timedelta(0)
        minutes = int(offset.total_seconds()) // 60
        zone_code = (
            f"GMT{'M' if minutes < 0 else 'P'}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}G"
        )
        cookies = [
            f"ASP.NET_SessionId={session.session_id}; path=/; HttpOnly; SameSite=Lax",
            "UserBranch=16; path=/",
            f"Locale=Culture=en-US&TimeZone={zone_code}; path=/",
            f".ASPXAUTH={session.auth_cookie}; path=/; HttpOnly",
            f"requestid={uuid.uuid4().hex.upper()}; path=/",
        ]
        return 204, Headers([("Set-Cookie", cookie) for cookie in cookies]), b""

    def _logout(self, headers: Mapping[str, str]) -> tuple[int, dict[str, str], bytes]:
        cookies = _cookies(headers)
        with self._lock:
            session = self._sessions.get(cookies.get("ASP.NET_SessionId", ""))
            if session is not None and session.auth_cookie == cookies.get(".ASPXAUTH"):
                del self._sessions[session.session_id]
        expired = "; expires=Thu, 01-Jan-1970 00:00:00 GMT; path=/"
        return 204, Headers([("Set-Cookie", f".ASPXAUTH={expired}")]), b""

    def _purge_idle(self) -> None:
        now = self.clock()
        for session_id, session in list(self._sessions.items()):
            if now - session.last_seen >= self.idle_timeout_seconds:
                del self._sessions[session_id]

    def _session(self, headers: Mapping[str, str]) -> ApiSession | None:
        """The cookie session of a request (both cookies must match), touched; None if gone."""
        cookies = _cookies(headers)
        with self._lock:
            self._purge_idle()
            session = self._sessions.get(cookies.get("ASP.NET_SessionId", ""))
            if session is None or session.auth_cookie != cookies.get(".ASPXAUTH"):
                return None
            session.last_seen = self.clock()
            return session

    def _bearer(self, headers: Mapping[str, str]) -> dict[str, Any] | None:
        scheme, _, token = (_header(headers, "Authorization") or "").partition(" ")
        if scheme.lower() != "bearer":
            return None
        with self._lock:
            grant = self._access_tokens.get(token.strip())
            if grant is None or grant["expires_at"] <= self.clock():
                return None
            return grant

    def _signed_in(self, headers: Mapping[str, str]) -> bool:
        return self._session(headers) is not None or self._bearer(headers) is not None

    # -- the contract-based API ----------------------------------------------------------------

    def _root(self, base: str) -> tuple[int, dict[str, str], bytes]:
        return _json(
            200,
            {
                "version": {
                    "acumaticaBuildVersion": self.build_version,
                    "databaseVersion": self.build_version,
                },
                "endpoints": [
                    {"name": name, "version": version, "href": f"{base}/entity/{name}/{version}/"}
                    for name, version in self.endpoints
                ],
            },
        )

    def _entity(
        self, route: str, params: dict[str, str], headers: Mapping[str, str], base: str
    ) -> tuple[int, dict[str, str], bytes]:
        parts = [unquote(part) for part in route.strip("/").split("/")]
        endpoint, version, entity = (parts + ["", "", "", ""])[1:4]
        if (endpoint, version) not in self.endpoints or entity.lower() != "stockitem":
            return _json(404, {"message": NO_RESOURCE_MESSAGE % (base + route)})
        if not self._signed_in(headers):
            return _json(401, {"message": NOT_AUTHORIZED_MESSAGE})
        try:
            conditions = _parse_filter(params.get("$filter", ""), self.zone)
            top = _optional_int(params.get("$top"))
            skip = _optional_int(params.get("$skip")) or 0
        except ValueError as error:
            return _json(400, {"message": str(error)})
        expand = {name.strip().lower() for name in params.get("$expand", "").split(",") if name}
        select = [name.strip() for name in params.get("$select", "").split(",") if name.strip()]
        with self._lock:
            items = sorted(self.items.values(), key=lambda item: item.inventory_id)
            if len(parts) > 4:  # StockItem/{InventoryID}: one record
                wanted = parts[4].lower()
                items = [item for item in items if item.inventory_id.lower() == wanted]
                if not items:
                    return _exception(500, NO_ENTITY_MESSAGE)
            matching = [item for item in items if _matches(self._item_values(item), conditions)]
            page = matching[skip : skip + top if top is not None else None]
            records = [
                self._stock_item_record(item, number, endpoint, version, expand, select)
                for number, item in enumerate(page, start=skip + 1)
            ]
        if len(parts) > 4:
            return _json(200, records[0])
        return _json(200, records)

    def _item_values(self, item: Item) -> dict[str, Any]:
        return {
            "InventoryID": item.inventory_id,
            "Description": item.description,
            "ItemStatus": item.item_status,
            "DefaultPrice": item.default_price,
            "LastModifiedDateTime": item.last_modified,
        }

    def _stock_item_record(
        self,
        item: Item,
        row_number: int,
        endpoint: str,
        version: str,
        expand: set[str],
        select: list[str],
    ) -> dict[str, Any]:
        values = self._item_values(item)
        values["LastModifiedDateTime"] = format_datetimeoffset(
            item.last_modified.astimezone(self.zone)
        )
        record: dict[str, Any] = {
            "id": item.note_id,
            "rowNumber": row_number,
            "note": {"value": ""},
        }
        for name, value in sorted(values.items()):
            if not select or name in select:
                record[name] = {"value": value}
        if "warehousedetails" in expand:
            record["WarehouseDetails"] = [
                {
                    "id": str(uuid.uuid5(uuid.UUID(item.note_id), warehouse)),
                    "rowNumber": number,
                    "note": None,
                    "QtyOnHand": {"value": stock.qty_on_hand},
                    "WarehouseID": {"value": warehouse},
                    "custom": {},
                }
                for number, (warehouse, stock) in enumerate(sorted(item.stock.items()), start=1)
            ]
        record["custom"] = {}
        record["_links"] = {
            "self": f"/entity/{endpoint}/{version}/StockItem/{item.note_id}",
            "files:put": f"/entity/{endpoint}/{version}/files/PX.Objects.IN.InventoryItemMaint"
            f"/Item/{quote(item.inventory_id)}/{{filename}}",
        }
        return record

    # -- OData for generic inquiries -----------------------------------------------------------

    def _odata(
        self,
        tenant: str,
        name: str,
        params: dict[str, str],
        headers: Mapping[str, str],
        base: str,
    ) -> tuple[int, dict[str, str], bytes]:
        if not self._odata_authorized(tenant, headers):
            answer_headers = {**JSON_HEADERS, "WWW-Authenticate": 'Basic realm="Acumatica"'}
            body = {"error": {"code": "", "message": NOT_AUTHORIZED_MESSAGE}}
            return 401, answer_headers, json.dumps(body).encode()
        with self._lock:
            inquiry = self._inquiries.get(name.lower())
        if inquiry is None or not inquiry.exposed_via_odata or inquiry.kind is None:
            message = f"The generic inquiry '{name}' was not found or is not exposed via OData."
            return _json(404, {"error": {"code": "", "message": message}})
        try:
            conditions = _parse_filter(params.get("$filter", ""), self.zone)
            order = _parse_orderby(params.get("$orderby", ""))
            top = _optional_int(params.get("$top"))
            skip = _optional_int(params.get("$skip")) or 0
        except ValueError as error:
            return _json(400, {"error": {"code": "", "message": str(error)}})
        select = [field.strip() for field in params.get("$select", "").split(",") if field.strip()]
        with self._lock:
            rows = self._sorted_inquiry_rows(inquiry.kind, tuple(order or [("InventoryID", False)]))
        if conditions:
            rows = [row for row in rows if _matches(row, conditions)]
        rows = rows[skip : skip + top if top is not None else None]
        value = []
        for row in rows:
            shown = {
                key: format_datetimeoffset(item.astimezone(self.zone))
                if isinstance(item, datetime)
                else item
                for key, item in row.items()
            }
            value.append({key: shown[key] for key in select if key in shown} if select else shown)
        return _json(
            200,
            {
                "@odata.context": f"{base}/t/{quote(tenant)}/api/odata/gi/$metadata#"
                + quote(inquiry.name),
                "value": value,
            },
        )

    def _odata_authorized(self, tenant: str, headers: Mapping[str, str]) -> bool:
        if tenant.lower() not in {name.lower() for name in self.tenants}:
            return False
        grant = self._bearer(headers)
        if grant is not None:
            return grant["tenant"].lower() == tenant.lower()
        scheme, _, encoded = (_header(headers, "Authorization") or "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            username, _, password = base64.b64decode(encoded).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        with self._lock:
            return username in self.users and self.users[username] == password

    def _sorted_inquiry_rows(
        self, kind: str, order: tuple[tuple[str, bool], ...]
    ) -> list[dict[str, Any]]:
        """An inquiry's rows in `$orderby` order (lock held), kept until the catalog changes:
        paging through a large catalog then costs a slice per page, not a sort (a 20,000-item
        load reads 80 pages). Callers slice or filter; they never change the list."""
        cached = self._odata_cache.get((kind, order))
        if cached is not None and cached[0] == self._catalog_version:
            return cached[1]
        rows = self._inquiry_rows(kind)
        for field_name, descending in reversed(order):
            rows.sort(key=lambda row, key=field_name: _sort_key(row.get(key)), reverse=descending)
        if len(self._odata_cache) > 16:
            self._odata_cache.clear()
        self._odata_cache[(kind, order)] = (self._catalog_version, rows)
        return rows

    def _inquiry_rows(self, kind: str) -> list[dict[str, Any]]:
        items = sorted(self.items.values(), key=lambda item: item.inventory_id)
        if kind == KIND_PRICES:
            return [
                {
                    "InventoryID": item.inventory_id,
                    "DefaultPrice": item.default_price,
                    "LastModifiedDateTime": item.price_modified,
                }
                for item in items
            ]
        return [
            {
                "InventoryID": item.inventory_id,
                "Warehouse": warehouse,
                "QtyAvailable": stock.qty_available,
                "QtyOnHand": stock.qty_on_hand,
                "LastModifiedDateTime": stock.last_modified,
            }
            for item in items
            for warehouse, stock in sorted(item.stock.items())
        ]

    def _inventory_row(self, item: Item, warehouse: str) -> dict[str, Any]:
        stock = item.stock[warehouse]
        return {
            "InventoryID": item.inventory_id,
            "Warehouse": warehouse,
            "QtyAvailable": _number(stock.qty_available),
            "QtyOnHand": _number(stock.qty_on_hand),
            "LastModifiedDateTime": self._push_datetime(stock.last_modified),
        }

    def _price_row(self, item: Item) -> dict[str, Any]:
        return {
            "InventoryID": item.inventory_id,
            "DefaultPrice": _number(item.default_price),
            "LastModifiedDateTime": self._push_datetime(item.price_modified),
        }

    def _push_datetime(self, moment: datetime) -> str:
        """Push notifications' dates: the instance's local time, no offset (`…T15:16:23.1`)."""
        local = moment.astimezone(self.zone)
        fraction = f"{local.microsecond // 1000:03d}".rstrip("0")
        text = local.strftime("%Y-%m-%dT%H:%M:%S")
        return f"{text}.{fraction}" if fraction else text

    def _item(self, inventory_id: str) -> Item:
        item = self.items.get(inventory_id)
        if item is None:
            raise ValueError(f"the simulator has no item {inventory_id!r}")
        return item

    # -- OAuth 2.0 ---------------------------------------------------------------------------

    def _discovery(self, base: str) -> tuple[int, dict[str, str], bytes]:
        return _json(
            200,
            {
                "issuer": f"{base}/identity",
                "authorization_endpoint": f"{base}/identity/connect/authorize",
                "token_endpoint": f"{base}/identity/connect/token",
                "scopes_supported": ["openid", "api", "offline_access", "api:concurrent_access"],
                "response_types_supported": ["code", "id_token", "token", "code id_token"],
                "grant_types_supported": [
                    "authorization_code",
                    "implicit",
                    "password",
                    "refresh_token",
                    "hybrid",
                ],
            },
        )

    def _authorize(self, method: str, params: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        client_id = params.get("client_id", "")
        redirect_uri = params.get("redirect_uri", "")
        with self._lock:
            app = self.oauth_apps.get(client_id)
        if app is None:
            return _error_page("unauthorized_client", "Unknown client or client not enabled")
        if app.redirect_uris and redirect_uri not in app.redirect_uris:
            return _error_page("invalid_request", "Invalid redirect_uri")
        if params.get("response_type") != "code":
            return _redirect(
                redirect_uri,
                {"error": "unsupported_response_type", "state": params.get("state", "")},
            )
        username = self.default_user
        if not self.oauth_auto_approve:
            if method != "POST":
                return _sign_in_page(params, "")
            username = params.get("username", "")
            with self._lock:
                valid = username in self.users and self.users[username] == params.get("password")
            if not valid:
                return _sign_in_page(params, "Invalid credentials. Please try again.")
        code = secrets.token_hex(32).upper()
        scope = params.get("scope", "")
        with self._lock:
            self._codes[code] = {
                "client_id": client_id,
                "redirect_uri": redirect_uri,
                "username": username,
                "tenant": client_id.partition("@")[2] or self.tenant,
                "scope": scope,
                "expires_at": self.clock() + DEFAULT_CODE_LIFETIME_SECONDS,
            }
        return _redirect(
            redirect_uri,
            {
                "code": code,
                "scope": scope,
                "state": params.get("state", ""),
                "session_state": secrets.token_urlsafe(16),
            },
        )

    def _token(
        self, form: dict[str, str], headers: Mapping[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        client_id, client_secret = form.get("client_id", ""), form.get("client_secret", "")
        scheme, _, encoded = (_header(headers, "Authorization") or "").partition(" ")
        if scheme.lower() == "basic":
            try:
                client_id, _, client_secret = base64.b64decode(encoded).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                pass
        with self._lock:
            app = self.oauth_apps.get(unquote(client_id))
            if app is None or app.secret != unquote(client_secret):
                return _json(400, {"error": "invalid_client"})
            grant_type = form.get("grant_type", "")
            now = self.clock()
            if grant_type == "authorization_code":
                grant = self._codes.pop(form.get("code", ""), None)
                if (
                    grant is None
                    or grant["expires_at"] <= now
                    or grant["client_id"] != app.client_id
                    or grant["redirect_uri"] != form.get("redirect_uri", "")
                ):
                    return _json(400, {"error": "invalid_grant"})
            elif grant_type == "password":
                username = form.get("username", "")
                if username not in self.users or self.users[username] != form.get("password"):
                    return _json(
                        400,
                        {
                            "error": "invalid_grant",
                            "error_description": "invalid_username_or_password",
                        },
                    )
                grant = {
                    "username": username,
                    "tenant": app.client_id.partition("@")[2] or self.tenant,
                    "scope": form.get("scope", ""),
                }
            elif grant_type == "refresh_token":
                # Each refresh token is used once: the answer carries its replacement.
                grant = self._refresh_tokens.pop(form.get("refresh_token", ""), None)
                if grant is None or grant["client_id"] != app.client_id:
                    return _json(400, {"error": "invalid_grant"})
            else:
                return _json(400, {"error": "unsupported_grant_type"})
            return _json(200, self._issue_tokens(app.client_id, grant))

    def _issue_tokens(self, client_id: str, grant: Mapping[str, Any]) -> dict[str, Any]:
        access_token = secrets.token_urlsafe(32)
        self._access_tokens[access_token] = {
            "username": grant["username"],
            "tenant": grant["tenant"],
            "expires_at": self.clock() + self.token_lifetime_seconds,
        }
        answer: dict[str, Any] = {
            "access_token": access_token,
            "expires_in": self.token_lifetime_seconds,
            "token_type": "Bearer",
            "scope": grant.get("scope", ""),
        }
        if "offline_access" in str(grant.get("scope", "")).split():
            refresh_token = secrets.token_urlsafe(32)
            self._refresh_tokens[refresh_token] = {
                "client_id": client_id,
                "username": grant["username"],
                "tenant": grant["tenant"],
                "scope": grant.get("scope", ""),
            }
            answer["refresh_token"] = refresh_token
        return answer

    # -- the Customization API ----------------------------------------------------------------

    def _customization(
        self, action: str, body: bytes, headers: Mapping[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        session = self._session(headers)  # tokens are not accepted here
        if session is None:
            return _json(401, {"message": NOT_AUTHORIZED_MESSAGE})
        if session.username not in self.customizers:
            return _exception(403, INSUFFICIENT_RIGHTS_MESSAGE)
        request = _loads(body)
        request = request if isinstance(request, dict) else {}
        handler = {
            "import": self._import_project,
            "publishbegin": self._publish_begin,
            "publishend": self._publish_end,
            "getpublished": self._get_published,
        }.get(action)
        if handler is None:
            return _json(404, {"message": NO_RESOURCE_MESSAGE % f"/CustomizationApi/{action}"})
        return _json(200, handler(request))

    def _log_entry(self, log_type: str, message: str) -> dict[str, str]:
        moment = self.now().astimezone(self.zone)
        return {
            "timestamp": moment.strftime("%Y-%m-%dT%H:%M:%S.")
            + f"{moment.microsecond // 1000:03d}",
            "logType": log_type,
            "message": message,
        }

    def _import_project(self, request: dict[str, Any]) -> dict[str, Any]:
        name = str(request.get("projectName") or "").strip()
        if not name:
            return {"log": [self._log_entry("error", "The project name is empty.")]}
        encoded = str(request.get("projectContentBase64") or "")
        with self._lock:
            if not encoded:
                # No content removes the project (and unpublishes it).
                removed = self.projects.pop(name, None)
                if name in self.published:
                    self.published.remove(name)
                    self._refresh_published()
                message = (
                    "The project has been deleted." if removed else "The project was not found."
                )
                return {"log": [self._log_entry("information", message)]}
            if name in self.projects and not request.get("isReplaceIfExists"):
                return {"log": [self._log_entry("error", f"The project {name} already exists.")]}
        try:
            content = base64.b64decode(encoded, validate=True)
            with zipfile.ZipFile(io.BytesIO(content)) as package:
                names = {entry.lower(): entry for entry in package.namelist()}
                if "project.xml" not in names:
                    raise ValueError("project.xml is missing")
                parse_project_xml(package.read(names["project.xml"]))
        except (binascii.Error, zipfile.BadZipFile, ValueError, ET.ParseError) as error:
            message = f"The package is not a valid customization project: {error}."
            return {"log": [self._log_entry("error", message)]}
        with self._lock:
            self.projects[name] = Project(
                name=name,
                description=str(request.get("projectDescription") or ""),
                level=int(request.get("projectLevel") or 0),
                content=content,
            )
        return {"log": [self._log_entry("information", f"The project {name} has been imported.")]}

    def _publish_begin(self, request: dict[str, Any]) -> dict[str, Any]:
        names = [str(name) for name in request.get("projectNames") or []]
        with self._lock:
            missing = [name for name in names if name not in self.projects]
            if not names or missing:
                message = f"The project {', '.join(missing) or '(none)'} was not found."
                return {"log": [self._log_entry("error", message)]}
            if self._publication is not None and not self._publication.finished:
                return {"log": [self._log_entry("error", "Another publishing process is running.")]}
            if request.get("tenantMode", "Current") not in ("Current", "All", "List"):
                return {"log": [self._log_entry("error", "The tenant mode is not valid.")]}
            self._publication = _Publication(
                names=names,
                merge=bool(request.get("isMergeWithExistingPackages")),
                only_validation=bool(request.get("isOnlyValidation")),
                polls_left=self.publish_polls,
                log=[self._log_entry("information", "Validation started.")],
                failure=self._publish_failure,
            )
            self._publish_failure = None
            return {"log": [self._log_entry("information", "Publishing has started.")]}

    def _publish_end(self, request: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            publication = self._publication
            if publication is None:
                return {"isCompleted": True, "isFailed": False, "log": []}
            if not publication.finished:
                if publication.polls_left > 0:
                    publication.polls_left -= 1
                    step = self.publish_polls - publication.polls_left
                    publication.log.append(
                        self._log_entry(
                            "information", f"Publishing step {step} of {self.publish_polls}."
                        )
                    )
                    return {"isCompleted": False, "isFailed": False, "log": list(publication.log)}
                publication.finished = True
                if publication.failure is not None:
                    publication.failed = True
                    publication.log += [
                        self._log_entry("error", text) for text in publication.failure
                    ]
                elif not publication.only_validation:
                    kept = [name for name in self.published if name not in publication.names]
                    self.published = (kept if publication.merge else []) + publication.names
                    self._refresh_published()
                    publication.log.append(self._log_entry("information", "Website updated."))
                    if self.publish_drops_sessions:
                        self._sessions.clear()  # the application restarts
                else:
                    publication.log.append(self._log_entry("information", "Validation finished."))
            if publication.failed:
                return {"isCompleted": False, "isFailed": True, "log": list(publication.log)}
            return {"isCompleted": True, "isFailed": False, "log": list(publication.log)}

    def _get_published(self, request: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            if not self.published:
                return {"log": [self._log_entry("information", NO_PUBLISHED_PROJECTS_MESSAGE)]}
            return {"projects": [{"name": name} for name in self.published], "log": []}

    def _refresh_published(self) -> None:
        """Read the published projects' inquiries and push notifications (lock held)."""
        inquiries: dict[str, PublishedInquiry] = {}
        definitions: list[PushNotificationDefinition] = []
        for name in self.published:
            with zipfile.ZipFile(io.BytesIO(self.projects[name].content)) as package:
                entry = next(e for e in package.namelist() if e.lower() == "project.xml")
                parsed = parse_project_xml(package.read(entry))
            for inquiry in parsed.inquiries:
                inquiries[inquiry.name.lower()] = inquiry
            definitions += parsed.push_notifications
        by_design = {
            inquiry.design_id: inquiry.name for inquiry in inquiries.values() if inquiry.design_id
        }
        for definition in definitions:
            definition.inquiry = by_design.get(definition.inquiry.lower(), definition.inquiry)
        self._inquiries = inquiries
        self._push_notifications = definitions


# --- helpers --------------------------------------------------------------------------------

_CONDITION = re.compile(
    r"^\s*(?P<field>[A-Za-z_][\w/]*)\s+(?P<op>eq|ne|gt|ge|lt|le)\s+(?P<value>.+?)\s*$",
    re.IGNORECASE,
)
# OData v4's `startswith(InventoryID,'AA')` (the reconciliation report's SKU filter).
_STARTSWITH = re.compile(
    r"^\s*startswith\(\s*(?P<field>[A-Za-z_][\w/]*)\s*,\s*(?P<value>'(?:[^']|'')*')\s*\)\s*$",
    re.IGNORECASE,
)
_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "startswith": lambda left, right: isinstance(left, str) and left.startswith(right),
    "eq": lambda left, right: left == right,
    "ne": lambda left, right: left != right,
    "gt": lambda left, right: left is not None and left > right,
    "ge": lambda left, right: left is not None and left >= right,
    "lt": lambda left, right: left is not None and left < right,
    "le": lambda left, right: left is not None and left <= right,
}


def _parse_filter(text: str, zone: ZoneInfo) -> list[tuple[str, str, Any]]:
    """`A eq 'x' and B gt datetimeoffset'…'` → [(field, op, value)]; ValueError if unreadable."""
    if not text.strip():
        return []
    conditions = []
    for part in re.split(
        r"\s+and\s+(?=(?:[^']*'[^']*')*[^']*$)", text.strip(), flags=re.IGNORECASE
    ):
        function = _STARTSWITH.match(part)
        if function:
            conditions.append((function["field"], "startswith", _literal(function["value"], zone)))
            continue
        match = _CONDITION.match(part)
        if not match:
            raise ValueError(f"The $filter condition '{part}' is not valid.")
        conditions.append((match["field"], match["op"].lower(), _literal(match["value"], zone)))
    return conditions


def _literal(text: str, zone: ZoneInfo) -> Any:
    typed = re.fullmatch(r"(datetimeoffset|datetime)'(.*)'", text, re.IGNORECASE)
    if typed:
        return _parse_moment(typed[2], zone)
    if len(text) >= 2 and text[0] == text[-1] == "'":
        return text[1:-1].replace("''", "'")
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}T[\d:.]+(Z|[+-]\d{2}:\d{2})?", text):
        return _parse_moment(text, zone)
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if text.lower() == "null":
        return None
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"The value {text} in $filter is not valid.") from None


def _parse_moment(text: str, zone: ZoneInfo) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"The date '{text}' in $filter is not valid (a '+' sent unencoded arrives as a space)."
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)


def _matches(values: Mapping[str, Any], conditions: Sequence[tuple[str, str, Any]]) -> bool:
    for name, op, expected in conditions:
        actual = next((value for key, value in values.items() if key.lower() == name.lower()), None)
        if isinstance(actual, str) and isinstance(expected, str):
            actual, expected = actual.casefold(), expected.casefold()  # SQL Server collation
        elif isinstance(actual, int | float) and isinstance(expected, float):
            actual = float(actual)
        try:
            if not _OPERATORS[op](actual, expected):
                return False
        except TypeError:
            return False
    return True


def _parse_orderby(text: str) -> list[tuple[str, bool]]:
    order = []
    for part in text.split(","):
        words = part.split()
        if not words:
            continue
        if len(words) > 2 or (len(words) == 2 and words[1].lower() not in ("asc", "desc")):
            raise ValueError(f"The $orderby clause '{part.strip()}' is not valid.")
        order.append((words[0], len(words) == 2 and words[1].lower() == "desc"))
    return order


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, "")
    if isinstance(value, str):
        return (1, value.casefold())
    if isinstance(value, datetime):
        return (2, value.timestamp())
    return (3, value)


def _optional_int(value: str | None) -> int | None:
    if value in (None, ""):
        return None
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"'{value}' is not a whole number.") from None
    if number < 0:
        raise ValueError(f"'{value}' must not be negative.")
    return number


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    return next((value for key, value in headers.items() if key.lower() == name.lower()), None)


def _cookies(headers: Mapping[str, str]) -> dict[str, str]:
    jar = SimpleCookie()
    try:
        jar.load(_header(headers, "Cookie") or "")
    except CookieError:
        return {}
    return {name: morsel.value for name, morsel in jar.items()}


def _form(body: bytes) -> dict[str, str]:
    return {
        key: values[-1]
        for key, values in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()
    }


def _logged_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Secrets hidden; the auth scheme and the cookie names stay (`Basic <redacted>`)."""
    logged = {}
    for name, value in headers.items():
        if name.lower() == "authorization":
            value = f"{value.partition(' ')[0]} <redacted>"
        elif name.lower() == "cookie":
            value = "; ".join(f"{cookie}=<redacted>" for cookie in sorted(_cookies(headers)))
        logged[name] = value
    return logged


def _logged_body(body: bytes) -> Any:
    data = _loads(body)
    if data is None and body:
        data = _form(body)
    if isinstance(data, dict):
        secret_keys = ("password", "client_secret", "refresh_token", "code", "projectContentBase64")
        return {key: ("<redacted>" if key in secret_keys else value) for key, value in data.items()}
    return data


def _loads(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def _json(status: int, payload: Any) -> tuple[int, dict[str, str], bytes]:
    return status, dict(JSON_HEADERS), json.dumps(payload).encode()


def _exception(
    status: int, message: str, exception_type: str = "PX.Data.PXException"
) -> tuple[int, dict[str, str], bytes]:
    """ASP.NET Web API's answer to an unhandled exception, as Acumatica sends it."""
    return _json(
        status,
        {
            "message": GENERIC_ERROR_MESSAGE,
            "exceptionMessage": message,
            "exceptionType": exception_type,
            "stackTrace": "   at PX.Api.ContractBased.WebApi (simulated)",
        },
    )


def _redirect(redirect_uri: str, params: Mapping[str, str]) -> tuple[int, dict[str, str], bytes]:
    separator = "&" if "?" in redirect_uri else "?"
    location = redirect_uri + separator + urlencode({k: v for k, v in params.items() if v})
    return 302, {**HTML_HEADERS, "Location": location}, b""


def _error_page(error: str, description: str) -> tuple[int, dict[str, str], bytes]:
    page = (
        "<!doctype html><html><head><title>Error</title></head><body><h1>Sorry, there was an "
        f"error : {html.escape(error)}</h1><p>{html.escape(description)}</p></body></html>"
    )
    return 400, dict(HTML_HEADERS), page.encode()


def _sign_in_page(params: Mapping[str, str], error: str) -> tuple[int, dict[str, str], bytes]:
    hidden = "".join(
        f'<input type="hidden" name="{html.escape(key)}" value="{html.escape(value)}">'
        for key, value in params.items()
        if key not in ("username", "password")
    )
    message = f'<p class="error">{html.escape(error)}</p>' if error else ""
    page = (
        "<!doctype html><html><head><title>Acumatica: Sign In</title></head><body>"
        f'<form method="post" action="/identity/connect/authorize">{hidden}{message}'
        '<label>Username <input name="username"></label>'
        '<label>Password <input name="password" type="password"></label>'
        '<button type="submit">Sign In</button></form></body></html>'
    )
    return 200, dict(HTML_HEADERS), page.encode()
