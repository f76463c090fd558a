"""A simulated Magento 2 REST API: the part the connector uses, answering as Magento does.

No Django here: `MagentoSimulator.handle()` takes a request and gives back
`(status, headers, body)`. `sandbox.server.serve()` puts it on a real socket for tests and
benchmarks; the demo mounts it under the sandbox URLs.

What it does like Magento (texts from Magento's source; see `connector.magento`):
- routes under `/rest/{store_code}/V1/…`; an unknown store code becomes part of the path, so
  it answers "Request does not match any route." (404), as Magento's path processor does;
- the bearer token: a wrong or missing one, or any token while `bearer_disabled` (Magento
  ≥ 2.4.4 refusing integration tokens as bearer tokens), answers 401 naming the resource;
- a GET with store code `all` is refused (400);
- base-prices saves the valid rows and lists the failed ones (200), several per row if a row
  fails several ways; source-items is all or nothing (400); the legacy stock item PUT answers
  404 for an unknown SKU and the stock item id on success;
- the reads reconciliation needs: GET source-items with searchCriteria (filter groups,
  condition types, sort orders, pageSize / currentPage, a page past the end answering the
  last page again) and base-prices-information (404 naming every unknown SKU);
- the web-API input limit (`input_limit`), and faults: latency, 500/503, an HTML page, a
  redirect to a login page, a dropped connection, a hang, a 401, maintenance mode.

Where Magento versions differ, the simulator follows 2.4.x:
- MSI accepts negative quantities (its QuantityValidator only checks "numeric");
- an unknown SKU or source code in source-items fails as "Could not save Source Item" (400)
  and nothing is saved (reported for 2.4.6; 2.3 saved an orphan source item).
"""

from __future__ import annotations

import json
import math
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote

from connector.magento import (
    GET_WITH_ALL_STORE_MESSAGE,
    INPUT_LIMIT_MESSAGE,
    INTERNAL_ERROR_MESSAGE,
    INVALID_TYPE_MESSAGE,
    NO_ROUTE_MESSAGE,
    NOT_AUTHORIZED_MESSAGE,
    PRICE_FIELD_PRICE,
    PRICE_FIELD_SKU,
    PRICE_INVALID_ATTRIBUTE_MESSAGE,
    PRICE_STORE_NOT_FOUND_MESSAGE,
    PRICES_UNKNOWN_SKU_MESSAGE,
    PRICES_UNKNOWN_SKUS_MESSAGE,
    REQUIRED_FIELD_MESSAGE,
    SOURCE_ITEM_EMPTY_MESSAGE,
    SOURCE_ITEM_NOT_NUMERIC_MESSAGE,
    SOURCE_ITEM_UNKNOWN_STATUS_MESSAGE,
    SOURCE_ITEM_WHITESPACE_MESSAGE,
    SOURCE_ITEMS_NOT_SAVED_MESSAGE,
    SOURCE_ITEMS_VALIDATION_FAILED,
    STOCK_ITEM_UNKNOWN_SKU_MESSAGE,
    fill_placeholders,
    php_string,
)
from sandbox.recording import RecordingSimulator

DEFAULT_TOKEN = "sandbox-magento-token"
DEFAULT_HANG_SECONDS = 60.0
FAULT_KINDS = ("503", "500", "html", "redirect", "drop", "timeout", "401")

# Class names Magento puts into the input-limit message (EntityArrayValidator's "type").
BASE_PRICE_TYPE = "\\Magento\\Catalog\\Api\\Data\\BasePriceInterface"
SOURCE_ITEM_TYPE = "\\Magento\\InventoryApi\\Api\\Data\\SourceItemInterface"

# ACL resources named in the 401 answer, per route (the modules' etc/webapi.xml).
RESOURCE_MODULES = "Magento_Backend::admin"
RESOURCE_STORES = "Magento_Backend::stores"
RESOURCE_CATALOG = "Magento_Catalog::catalog"
RESOURCE_SOURCE_ITEMS = "Magento_InventoryApi::stock_source_item_assign"
RESOURCE_SOURCES = "Magento_InventoryApi::source_edit"
RESOURCE_STOCK_ITEMS = "Magento_CatalogInventory::cataloginventory"
RESOURCE_SOURCE_ITEMS_READ = "Magento_InventoryApi::source"

# (method, path pattern, ACL resource named in a 401, handler method, needs MSI)
ROUTES = [
    ("GET", re.compile(r"/V1/modules"), RESOURCE_MODULES, "_modules", False),
    ("GET", re.compile(r"/V1/store/storeConfigs"), RESOURCE_STORES, "_store_configs", False),
    ("POST", re.compile(r"/V1/products/base-prices"), RESOURCE_CATALOG, "_base_prices", False),
    (
        "POST",
        re.compile(r"/V1/inventory/source-items"),
        RESOURCE_SOURCE_ITEMS,
        "_source_items",
        True,
    ),
    ("POST", re.compile(r"/V1/inventory/sources"), RESOURCE_SOURCES, "_save_source", True),
    (
        "GET",
        re.compile(r"/V1/inventory/source-items"),
        RESOURCE_SOURCE_ITEMS_READ,
        "_search_source_items",
        True,
    ),
    (
        "POST",
        re.compile(r"/V1/products/base-prices-information"),
        RESOURCE_CATALOG,
        "_base_prices_information",
        False,
    ),
    (
        "PUT",
        re.compile(r"/V1/products/(?P<sku>[^/]+)/stockItems/(?P<item_id>[^/]+)"),
        RESOURCE_STOCK_ITEMS,
        "_stock_item",
        False,
    ),
]

JSON_HEADERS = {"Content-Type": "application/json; charset=utf-8"}
HTML_HEADERS = {"Content-Type": "text/html; charset=UTF-8"}

MAINTENANCE_PAGE = (
    "<!doctype html><html><head><title>Error 503: Service Unavailable</title></head>"
    "<body><h1>Service Temporarily Unavailable</h1><p>The server is temporarily unable to "
    "service your request due to maintenance downtime or capacity problems. Please try again "
    "later.</p></body></html>"
)
PROXY_503_PAGE = (
    "<html><head><title>503 Service Temporarily Unavailable</title></head><body>"
    "<center><h1>503 Service Temporarily Unavailable</h1></center><hr><center>nginx</center>"
    "</body></html>"
)
STOREFRONT_PAGE = (
    "<!doctype html><html><head><title>Home page</title></head><body><header>Luma</header>"
    "<main>Welcome to our store.</main></body></html>"
)
ADMIN_LOGIN_PATH = "/admin/admin/index/index/key/0123456789abcdef/"

BASE_MODULES = [
    "Magento_Store",
    "Magento_Directory",
    "Magento_Theme",
    "Magento_Eav",
    "Magento_Customer",
    "Magento_Backend",
    "Magento_Catalog",
    "Magento_CatalogInventory",
    "Magento_Sales",
    "Magento_Quote",
    "Magento_Checkout",
    "Magento_Integration",
    "Magento_Webapi",
    "Magento_WebapiAsync",
    "Magento_AsynchronousOperations",
]
MSI_MODULES = [
    "Magento_Inventory",
    "Magento_InventoryApi",
    "Magento_InventoryCatalog",
    "Magento_InventoryCatalogApi",
    "Magento_InventorySales",
    "Magento_InventorySalesApi",
]


class DropConnection(Exception):
    """Raised by `handle()`: close the connection without answering."""


@dataclass
class LoggedRequest:
    method: str
    path: str
    headers: dict[str, str]
    json_body: Any
    status: int | None  # None: the connection was dropped without an answer
    response_json: Any = None  # the answer's JSON (None for a page or no answer)


@dataclass
class Store:
    code: str
    id: int
    website_id: int
    base_currency_code: str = "USD"
    locale: str = "en_US"
    timezone: str = "America/Chicago"


@dataclass
class Product:
    price: float
    sources: dict[str, float] = field(default_factory=dict)
    source_status: dict[str, int] = field(default_factory=dict)
    status: int = 1
    item_id: int = 0


class MagentoSimulator(RecordingSimulator):
    """Thread-safe: the server calls `handle()` from many threads; tests poke it from theirs."""

    FAULT_KINDS = FAULT_KINDS

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        base_url: str = "http://magento.test/",
        msi: bool = True,
        input_limit: int | None = None,
    ) -> None:
        super().__init__()
        self.token = token
        self.base_url = base_url
        self.msi = msi
        self.input_limit = input_limit
        self.bearer_disabled = False
        self.maintenance = False
        self.latency_ms = 0.0
        self.hang_seconds = DEFAULT_HANG_SECONDS
        self.stores: dict[str, Store] = {
            "admin": Store("admin", 0, 0),
            "default": Store("default", 1, 1),
        }
        self.sources: set[str] = {"default"}
        self.catalog: dict[str, Product] = {}
        self._next_item_id = 1

    # -- setup and inspection (tests, demo) -------------------------------------------------

    def add_product(
        self, sku: str, price: float = 10.0, sources: Mapping[str, float] | None = None
    ) -> None:
        with self._lock:
            quantities = {code: float(qty) for code, qty in (sources or {"default": 0}).items()}
            self.sources.update(quantities)
            self.catalog[sku] = Product(
                price=float(price),
                sources=quantities,
                source_status={code: int(qty > 0) for code, qty in quantities.items()},
                item_id=self._next_item_id,
            )
            self._next_item_id += 1

    def add_store(
        self, code: str, store_id: int, website_id: int = 1, base_currency_code: str = "USD"
    ) -> None:
        with self._lock:
            self.stores[code] = Store(code, store_id, website_id, base_currency_code)

    def add_source(self, source_code: str) -> None:
        with self._lock:
            self.sources.add(source_code)

    def price_of(self, sku: str) -> float | None:
        with self._lock:
            product = self._product(sku)
            return product.price if product else None

    def quantity_of(self, sku: str, source_code: str = "default") -> float | None:
        with self._lock:
            product = self._product(sku)
            return product.sources.get(source_code) if product else None

    def stock_status_of(self, sku: str, source_code: str = "default") -> int | None:
        with self._lock:
            product = self._product(sku)
            return product.source_status.get(source_code) if product else None

    def heal(self) -> None:
        """No more faults and no maintenance; requests hanging now are let go."""
        with self._lock:
            self.maintenance = False
        super().heal()

    # -- the API ----------------------------------------------------------------------------

    def handle(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        """Answer one request; `path` is everything after the server's root (`/rest/…`).

        Raises `DropConnection` when the connection must close without an answer.
        """
        method = method.upper()
        json_body = _loads(body)
        logged_headers = {
            name: ("<redacted>" if name.lower() == "authorization" else value)
            for name, value in headers.items()
        }
        status: int | None = None
        answer: bytes = b""
        try:
            status, answer_headers, answer = self._answer(method, path, headers, body, json_body)
            return status, answer_headers, answer
        finally:
            entry = LoggedRequest(method, path, logged_headers, json_body, status, _loads(answer))
            with self._lock:
                self._log.append(entry)

    def _answer(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str],
        body: bytes,
        json_body: Any,
    ) -> tuple[int, dict[str, str], bytes]:
        if self.latency_ms:
            time.sleep(self.latency_ms / 1000)
        if self.maintenance:
            return 503, dict(HTML_HEADERS), MAINTENANCE_PAGE.encode()
        fault = self._take_fault()
        if fault is not None:
            return self._fault(fault)

        path, _, query = path.partition("?")
        store_code, api_path = self._split_store(path)
        route = self._match(method, api_path)
        if route is None:
            return _json(404, {"message": NO_ROUTE_MESSAGE, "trace": None})
        handler, resource, arguments = route
        if not self._authorized(headers):
            return _json(
                401, {"message": NOT_AUTHORIZED_MESSAGE, "parameters": {"resources": resource}}
            )
        if store_code == "all" and method == "GET":
            return _json(400, {"message": GET_WITH_ALL_STORE_MESSAGE})
        if method in ("POST", "PUT"):
            if not isinstance(json_body, dict):
                return _json(400, {"message": "Decoding error: Syntax error"})
        status, payload = handler(json_body, query=query, **arguments)
        return _json(status, payload)

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
            report_id = f"webapi-{uuid.uuid4().hex[:13]}"
            return _json(500, {"message": INTERNAL_ERROR_MESSAGE % report_id})
        if kind == "html":
            return 200, dict(HTML_HEADERS), STOREFRONT_PAGE.encode()
        if kind == "redirect":
            location = self.base_url.rstrip("/") + ADMIN_LOGIN_PATH
            return 302, {**HTML_HEADERS, "Location": location}, b""
        # "401": the token refused, as Magento refuses it.
        return _json(
            401, {"message": NOT_AUTHORIZED_MESSAGE, "parameters": {"resources": RESOURCE_CATALOG}}
        )

    def _split_store(self, path: str) -> tuple[str, str]:
        """`/rest/{store}/V1/x` → (store, `/V1/x`); an unknown store stays in the path."""
        if not path.startswith("/rest/"):
            return "", path
        rest = path[len("/rest") :]
        segment, _, remainder = rest[1:].partition("/")
        if segment == "all" or segment in self.stores:
            return segment, "/" + remainder
        if segment == "V1":
            return "default", rest
        return "", "/rest" + rest

    def _match(self, method: str, api_path: str) -> tuple[Any, str, dict[str, str]] | None:
        for route_method, pattern, resource, handler_name, needs_msi in ROUTES:
            if route_method != method or (needs_msi and not self.msi):
                continue
            match = pattern.fullmatch(api_path)
            if match:
                arguments = {name: unquote(value) for name, value in match.groupdict().items()}
                return getattr(self, handler_name), resource, arguments
        return None

    def _authorized(self, headers: Mapping[str, str]) -> bool:
        value = next(
            (value for name, value in headers.items() if name.lower() == "authorization"), ""
        )
        scheme, _, token = value.partition(" ")
        return not self.bearer_disabled and scheme.lower() == "bearer" and token == self.token

    # -- endpoints --------------------------------------------------------------------------

    def _modules(self, body: Any, query: str) -> tuple[int, Any]:
        return 200, BASE_MODULES + (MSI_MODULES if self.msi else [])

    def _store_configs(self, body: Any, query: str) -> tuple[int, Any]:
        params = parse_qs(query)
        wanted = set(params.get("storeCodes[]", []) + params.get("storeCodes", []))
        with self._lock:
            stores = [
                store
                for store in self.stores.values()
                if store.id != 0 and (not wanted or store.code in wanted)
            ]
        url = self.base_url.rstrip("/") + "/"
        return 200, [
            {
                "id": store.id,
                "code": store.code,
                "website_id": store.website_id,
                "locale": store.locale,
                "base_currency_code": store.base_currency_code,
                "default_display_currency_code": store.base_currency_code,
                "timezone": store.timezone,
                "weight_unit": "lbs",
                "base_url": url,
                "base_link_url": url,
                "base_static_url": url + "static/",
                "base_media_url": url + "media/",
                "secure_base_url": url,
                "secure_base_link_url": url,
                "secure_base_static_url": url + "static/",
                "secure_base_media_url": url + "media/",
            }
            for store in sorted(stores, key=lambda store: store.id)
        ]

    def _base_prices(self, body: dict[str, Any], query: str) -> tuple[int, Any]:
        """BasePriceStorage::update: each row checked for SKU, price and store; valid rows saved."""
        prices = body.get("prices")
        refusal = self._check_list(prices, "prices", BASE_PRICE_TYPE)
        if refusal:
            return refusal
        for row in prices:
            refusal = _check_type(row, "price", "float") or _check_type(row, "store_id", "int")
            if refusal:
                return refusal
        failures: list[dict[str, Any]] = []
        with self._lock:
            store_ids = {store.id for store in self.stores.values()}
            valid = []
            for row in prices:
                sku, price, store_id = row.get("sku"), row.get("price"), row.get("store_id")
                row_failures = []
                if not sku or self._product(str(sku)) is None:
                    row_failures.append(
                        _price_failure(PRICE_INVALID_ATTRIBUTE_MESSAGE, [PRICE_FIELD_SKU, sku])
                    )
                if price is None or float(price) < 0:
                    row_failures.append(
                        _price_failure(PRICE_INVALID_ATTRIBUTE_MESSAGE, [PRICE_FIELD_PRICE, price])
                    )
                if store_id is None or int(store_id) not in store_ids:
                    parameters = {"SKU": sku, "storeId": store_id}
                    row_failures.append(
                        {
                            # Magento sends this one filled, its parameters as a list.
                            "message": fill_placeholders(PRICE_STORE_NOT_FOUND_MESSAGE, parameters),
                            "parameters": [php_string(sku), php_string(store_id)],
                        }
                    )
                failures.extend(row_failures)
                if not row_failures:
                    valid.append((str(sku), float(price)))
            # Catalog price scope "Global" (Magento's default): every row lands on store 0.
            for sku, price in valid:
                self._product(sku).price = price
        return 200, failures

    def _source_items(self, body: dict[str, Any], query: str) -> tuple[int, Any]:
        """SourceItemsSaveHandler: validate every item; one bad item refuses them all."""
        items = body.get("sourceItems")
        refusal = self._check_list(items, "sourceItems", SOURCE_ITEM_TYPE)
        if refusal:
            return refusal
        for item in items:
            refusal = _check_type(item, "quantity", "float") or _check_type(item, "status", "int")
            if refusal:
                return refusal
        errors = [error for item in items for error in _source_item_errors(item)]
        if errors:
            first = fill_placeholders(errors[0]["message"], errors[0]["parameters"])
            return 400, {"message": f"{SOURCE_ITEMS_VALIDATION_FAILED}: {first}", "errors": errors}
        with self._lock:
            for item in items:
                if (
                    self._product(str(item["sku"])) is None
                    or item["source_code"] not in self.sources
                ):
                    return 400, {"message": SOURCE_ITEMS_NOT_SAVED_MESSAGE}
            for item in items:
                product = self._product(str(item["sku"]))
                product.sources[item["source_code"]] = float(item["quantity"])
                product.source_status[item["source_code"]] = int(item["status"])
        return 200, []

    def _save_source(self, body: dict[str, Any], query: str) -> tuple[int, Any]:
        source = body.get("source")
        if not isinstance(source, dict):
            return 400, {"message": REQUIRED_FIELD_MESSAGE, "parameters": {"fieldName": "source"}}
        code = str(source.get("source_code") or "").strip()
        if not code:
            return 400, {
                "message": f"{SOURCE_ITEMS_VALIDATION_FAILED}: "
                + fill_placeholders(SOURCE_ITEM_EMPTY_MESSAGE, {"field": "source_code"}),
                "errors": [
                    {"message": SOURCE_ITEM_EMPTY_MESSAGE, "parameters": {"field": "source_code"}}
                ],
            }
        self.add_source(code)
        return 200, []

    def _stock_item(
        self, body: dict[str, Any], query: str, sku: str, item_id: str
    ) -> tuple[int, Any]:
        """StockRegistry::updateStockItemBySku: merge the fields sent onto the stored item."""
        stock_item = body.get("stockItem")
        if not isinstance(stock_item, dict):
            return 400, {
                "message": REQUIRED_FIELD_MESSAGE,
                "parameters": {"fieldName": "stockItem"},
            }
        refusal = _check_type(stock_item, "qty", "float")
        if refusal:
            return refusal
        with self._lock:
            product = self._product(sku)
            if product is None:
                return 404, {"message": STOCK_ITEM_UNKNOWN_SKU_MESSAGE, "parameters": [sku]}
            if stock_item.get("qty") is not None:
                product.sources["default"] = float(stock_item["qty"])
            if "is_in_stock" in stock_item:
                product.source_status["default"] = int(bool(stock_item["is_in_stock"]))
            return 200, product.item_id

    # -- reads (reconciliation) ------------------------------------------------------------

    def _search_source_items(self, body: Any, query: str) -> tuple[int, Any]:
        """SourceItemRepository::getList: searchCriteria filters (OR within a group, AND
        across groups), sort orders, pageSize / currentPage. A page past the end answers the
        last page again, as Magento's collections do; `total_count` tells where to stop."""
        try:
            criteria = parse_search_criteria(query)
        except ValueError as error:
            return 400, {"message": str(error)}
        with self._lock:
            items = [
                {
                    "sku": sku,
                    "source_code": code,
                    "quantity": quantity,
                    "status": product.source_status.get(code, int(quantity > 0)),
                }
                for sku, product in self.catalog.items()
                for code, quantity in product.sources.items()
            ]
        try:
            items = [item for item in items if criteria.matches(item)]
        except ValueError as error:
            return 400, {"message": str(error)}
        for sort_field, direction in reversed(criteria.sort_orders):
            if sort_field not in SOURCE_ITEM_FIELDS:
                return 400, {"message": f'Invalid sort field "{sort_field}".'}
            items.sort(
                key=lambda item, name=sort_field: _collation_key(item[name]),
                reverse=direction == "DESC",
            )
        total = len(items)
        page = items
        if criteria.page_size:
            last_page = max(1, math.ceil(total / criteria.page_size))
            current = min(criteria.current_page or 1, last_page)
            start = (current - 1) * criteria.page_size
            page = items[start : start + criteria.page_size]
        return 200, {
            "items": page,
            "search_criteria": criteria.as_json(),
            "total_count": total,
        }

    def _base_prices_information(self, body: dict[str, Any], query: str) -> tuple[int, Any]:
        """BasePriceStorage::get: one row per SKU at the global scope (store 0); any unknown
        SKU refuses the whole request with 404 naming them (InvalidSkuProcessor)."""
        skus = body.get("skus")
        if skus is None:
            return 400, {"message": REQUIRED_FIELD_MESSAGE, "parameters": {"fieldName": "skus"}}
        if not isinstance(skus, list) or not all(isinstance(sku, str) for sku in skus):
            return 400, {"message": "Decoding error: Syntax error"}
        with self._lock:
            found = {sku: self._stored_sku(sku) for sku in skus}
            unknown = [sku for sku, stored in found.items() if stored is None]
            if unknown:
                template = (
                    PRICES_UNKNOWN_SKU_MESSAGE if len(unknown) == 1
                    else PRICES_UNKNOWN_SKUS_MESSAGE
                )
                return 404, {"message": template, "parameters": {"sku": ", ".join(unknown)}}
            rows = []
            for stored in dict.fromkeys(found.values()):
                rows.append({"price": self.catalog[stored].price, "store_id": 0, "sku": stored})
        return 200, rows

    # -- helpers ----------------------------------------------------------------------------

    def _stored_sku(self, sku: str) -> str | None:
        """The SKU as Magento stores it (SKUs are case-insensitive), or None."""
        if sku in self.catalog:
            return sku
        folded = sku.casefold()
        return next((stored for stored in self.catalog if stored.casefold() == folded), None)

    def _product(self, sku: str) -> Product | None:
        """Magento's SKUs are case-insensitive."""
        product = self.catalog.get(sku)
        if product is not None:
            return product
        folded = sku.casefold()
        return next((p for s, p in self.catalog.items() if s.casefold() == folded), None)

    def _check_list(self, items: Any, name: str, type_name: str) -> tuple[int, Any] | None:
        if items is None:
            return 400, {"message": REQUIRED_FIELD_MESSAGE, "parameters": {"fieldName": name}}
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            return 400, {"message": "Decoding error: Syntax error"}
        if self.input_limit is not None and len(items) > self.input_limit:
            return 400, {
                "message": INPUT_LIMIT_MESSAGE,
                "parameters": {"type": type_name, "max": self.input_limit},
            }
        return None


# --- searchCriteria (GET …?searchCriteria[filter_groups][0][filters][0][field]=sku&…) -----------

SOURCE_ITEM_FIELDS = ("sku", "source_code", "quantity", "status")
_CRITERIA_KEY = re.compile(
    r"searchCriteria\[(?:filter_groups|filterGroups)\]\[(\d+)\]\[filters\]\[(\d+)\]"
    r"\[(field|value|condition_type|conditionType)\]"
)
_SORT_KEY = re.compile(
    r"searchCriteria\[(?:sort_orders|sortOrders)\]\[(\d+)\]\[(field|direction)\]"
)

_PAGING_KEYS = {
    "searchCriteria[pageSize]": "page_size",
    "searchCriteria[page_size]": "page_size",
    "searchCriteria[currentPage]": "current_page",
    "searchCriteria[current_page]": "current_page",
}


@dataclass
class SearchCriteria:
    """What a GET list call asked for: filter groups (AND) of filters (OR), sorting, paging."""

    filter_groups: list[list[dict[str, str]]] = field(default_factory=list)
    sort_orders: list[tuple[str, str]] = field(default_factory=list)
    page_size: int | None = None
    current_page: int | None = None

    def matches(self, item: Mapping[str, Any]) -> bool:
        return all(
            any(_condition_holds(item, condition) for condition in group)
            for group in self.filter_groups
        )

    def as_json(self) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "filter_groups": [
                {"filters": [dict(condition) for condition in group]}
                for group in self.filter_groups
            ]
        }
        if self.sort_orders:
            answer["sort_orders"] = [
                {"field": name, "direction": direction} for name, direction in self.sort_orders
            ]
        if self.page_size is not None:
            answer["page_size"] = self.page_size
        if self.current_page is not None:
            answer["current_page"] = self.current_page
        return answer


def parse_search_criteria(query: str) -> SearchCriteria:
    """Both spellings Magento accepts (`filter_groups` and `filterGroups`, …)."""
    groups: dict[int, dict[int, dict[str, str]]] = {}
    sorts: dict[int, dict[str, str]] = {}
    criteria = SearchCriteria()
    for key, values in parse_qs(query, keep_blank_values=True).items():
        value = values[-1]
        if match := _CRITERIA_KEY.fullmatch(key):
            name = "condition_type" if match[3] == "conditionType" else match[3]
            groups.setdefault(int(match[1]), {}).setdefault(int(match[2]), {})[name] = value
        elif match := _SORT_KEY.fullmatch(key):
            sorts.setdefault(int(match[1]), {})[match[2]] = value
        elif key in _PAGING_KEYS:
            try:
                number = int(value)
            except ValueError:
                raise ValueError(f'The "{value}" value\'s type is invalid. The "int" type '
                                 "was expected. Verify and try again.") from None
            setattr(criteria, _PAGING_KEYS[key], number)
    for index in sorted(groups):
        group = []
        for position in sorted(groups[index]):
            condition = groups[index][position]
            if "field" not in condition:
                raise ValueError('"field" is required. Enter and try again.')
            condition.setdefault("value", "")
            condition.setdefault("condition_type", "eq")
            group.append(condition)
        criteria.filter_groups.append(group)
    for index in sorted(sorts):
        name = sorts[index].get("field", "")
        criteria.sort_orders.append((name, sorts[index].get("direction", "DESC").upper()))
    return criteria


def _collation_key(value: Any) -> Any:
    return value.casefold() if isinstance(value, str) else value


def _like(pattern: str) -> re.Pattern[str]:
    """MySQL LIKE: % any run, _ one character, backslash escapes; case-insensitive."""
    parts = []
    escaped = False
    for character in pattern:
        if escaped:
            parts.append(re.escape(character))
            escaped = False
        elif character == "\\":
            escaped = True
        elif character == "%":
            parts.append(".*")
        elif character == "_":
            parts.append(".")
        else:
            parts.append(re.escape(character))
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


def _condition_holds(item: Mapping[str, Any], condition: Mapping[str, str]) -> bool:
    name, kind, value = condition["field"], condition["condition_type"], condition["value"]
    if name not in item:
        raise ValueError(f'Invalid filter field "{name}".')
    actual = item[name]
    if kind in ("in", "nin"):
        wanted = {_collation_key(_typed(part.strip(), actual)) for part in value.split(",")}
        return (_collation_key(actual) in wanted) == (kind == "in")
    if kind in ("like", "nlike"):
        return bool(_like(value).fullmatch(str(actual))) == (kind == "like")
    if kind in ("null", "notnull"):
        return (actual is None) == (kind == "null")
    comparisons = {
        "eq": lambda left, right: left == right,
        "neq": lambda left, right: left != right,
        "gt": lambda left, right: left > right,
        "gteq": lambda left, right: left >= right,
        "moreq": lambda left, right: left >= right,
        "from": lambda left, right: left >= right,
        "lt": lambda left, right: left < right,
        "lteq": lambda left, right: left <= right,
        "to": lambda left, right: left <= right,
    }
    if kind not in comparisons:
        raise ValueError(f'Invalid condition type "{kind}".')
    return comparisons[kind](_collation_key(actual), _collation_key(_typed(value, actual)))


def _typed(text: str, like: Any) -> Any:
    """A query value compared as the column's type (MySQL compares numbers as numbers)."""
    if isinstance(like, int | float) and not isinstance(like, bool):
        try:
            return float(text)
        except ValueError:
            return text
    return text


def _source_item_errors(item: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The validator chain of Magento's SourceItemValidatorChain, in its order."""
    errors = []
    sku = "" if item.get("sku") is None else str(item["sku"])
    source_code = "" if item.get("source_code") is None else str(item["source_code"])
    if not sku.strip():
        errors.append(_error(SOURCE_ITEM_EMPTY_MESSAGE, field="sku"))
    if not source_code.strip():
        errors.append(_error(SOURCE_ITEM_EMPTY_MESSAGE, field="source_code"))
    if re.search(r"\s", source_code):
        errors.append(_error(SOURCE_ITEM_WHITESPACE_MESSAGE, field="source_code"))
    if not _is_numeric(item.get("quantity")):
        errors.append(_error(SOURCE_ITEM_NOT_NUMERIC_MESSAGE, field="quantity"))
    status = item.get("status")
    if not _is_numeric(status):
        # Magento's StatusValidator names "quantity" here (sic).
        errors.append(_error(SOURCE_ITEM_NOT_NUMERIC_MESSAGE, field="quantity"))
    if not _is_numeric(status) or int(float(status)) not in (0, 1):
        errors.append(_error(SOURCE_ITEM_UNKNOWN_STATUS_MESSAGE, field="status"))
    return errors


def _error(message: str, **parameters: Any) -> dict[str, Any]:
    return {"message": message, "parameters": parameters}


def _price_failure(message: str, parameters: list[Any]) -> dict[str, Any]:
    return {"message": message, "parameters": [php_string(value) for value in parameters]}


def _is_numeric(value: Any) -> bool:
    """PHP's is_numeric, for the values JSON can carry: numbers and numeric strings."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return False
    try:
        return math.isfinite(float(value))
    except ValueError:
        return False


def _check_type(row: Mapping[str, Any], name: str, type_name: str) -> tuple[int, Any] | None:
    """The web API's type conversion: a value that is not a number refuses the request."""
    value = row.get(name)
    if value is None or _is_numeric(value):
        return None
    shown = json.dumps(value) if not isinstance(value, str) else value
    message = INVALID_TYPE_MESSAGE.format(field=name, value=shown, type=type_name)
    return 400, {"message": message}


def _loads(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def _json(status: int, payload: Any) -> tuple[int, dict[str, str], bytes]:
    return status, dict(JSON_HEADERS), json.dumps(payload).encode()
