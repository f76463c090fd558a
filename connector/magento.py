"""Magento 2 REST client: prices, stock, the connection test, and the reads the
reconciliation report needs (source items by search criteria, base prices by SKU).

Only `requests` and the standard library: a test can use this module with nothing but a URL.
Every call answers with a small `CallResult`, or raises a `MagentoError` subclass whose class
says what the answer means for the message being sent (DESIGN.md section 5):

    MagentoConfigError       trips the outage guard, uses up no attempt
      MagentoAuthError         401/403: token refused (with the 2.4.4 bearer-token hint)
      MagentoRouteNotFound     "Request does not match any route.", or a web page: wrong URL
    MagentoRetryableError    5xx, 429, timeouts, dropped connections, HTML where JSON was due
      MagentoTimeout, MagentoConnectionError, MagentoServerError
        MagentoMaintenance     the maintenance page: trips the outage guard, no attempt used
    MagentoDataError         400 validation: the message fails at once
    MagentoInputLimitError   400 "Maximum items of type ...": split the batch to `max_items`
    MagentoUnknownSku        the product does not exist: the message is skipped

`classify_response` and `classify_transport_error` are the one place that maps an answer
(or a failure to get one) to an error. Magento's exact message texts are the constants below,
taken from Magento's source (see each comment), so that a real trace can replace them.
"""

from __future__ import annotations

import json
import re
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import requests
from requests.adapters import HTTPAdapter

from connector import http_failures
from connector.http_failures import (
    CallError,
    describe_transport_failure,
    excerpt,
    parse_json,
    redact,
)

# --- Magento's own texts (one place; replace from a real trace if Magento changes them) ------

# Magento\Framework\Webapi\Rest Router: wrong path, method or store code in the URL.
NO_ROUTE_MESSAGE = "Request does not match any route."
# Magento\Webapi\Controller\Rest\RequestValidator::checkPermissions (HTTP 401).
NOT_AUTHORIZED_MESSAGE = "The consumer isn't authorized to access %resources."
# ... RequestValidator::validate: a GET with store code `all` (HTTP 400).
GET_WITH_ALL_STORE_MESSAGE = "Cannot perform GET operation with store code 'all'"
# Magento\Framework\Webapi\Validator\EntityArrayValidator (input limits, HTTP 400).
INPUT_LIMIT_MESSAGE = 'Maximum items of type "%type" is %max'
# pub/errors/default/503.phtml: the page Magento serves while in maintenance mode (HTTP 503).
MAINTENANCE_PAGE_MARK = "maintenance downtime"
# Magento\Framework\Webapi\ErrorProcessor::INTERNAL_SERVER_ERROR_MSG (HTTP 500).
INTERNAL_ERROR_MESSAGE = "Internal Error. Details are available in Magento log file. Report ID: %s"
# Magento\Framework\Webapi\ServiceInputProcessor: a required body parameter is missing.
REQUIRED_FIELD_MESSAGE = '"%fieldName" is required. Enter and try again.'
# ... TypeProcessor via ServiceInputProcessor: a value of the wrong type (already filled).
INVALID_TYPE_MESSAGE = (
    'Error occurred during "{field}" processing. The "{value}" value\'s type is invalid. '
    'The "{type}" type was expected. Verify and try again.'
)

# Magento\Catalog\Model\Product\Price\BasePriceStorage::retrieveValidPrices: per-row failures
# of POST /V1/products/base-prices, answered with HTTP 200. Parameters arrive as a list:
# ["SKU", "<sku>"], ["Price", "<price>"], ["<sku>", "<store id>"] (the store message comes
# already filled). An unknown SKU and a product type without a price of its own (e.g.
# configurable) both give the "SKU" form (Validation\InvalidSkuProcessor).
PRICE_INVALID_ATTRIBUTE_MESSAGE = "Invalid attribute %fieldName = %fieldValue."
PRICE_STORE_NOT_FOUND_MESSAGE = (
    "Requested store is not found. Row ID: SKU = %SKU, Store ID: %storeId."
)
PRICE_FIELD_SKU = "SKU"
PRICE_FIELD_PRICE = "Price"

# Magento\Inventory SourceItemsSaveHandler / SourceItem validators (HTTP 400, whole request):
# "Validation Failed: <first error, filled>" with errors[] = [{"message", "parameters"}].
SOURCE_ITEMS_VALIDATION_FAILED = "Validation Failed"
SOURCE_ITEM_EMPTY_MESSAGE = '"%field" can not be empty.'
SOURCE_ITEM_WHITESPACE_MESSAGE = '"%field" can not contain whitespaces.'
SOURCE_ITEM_NOT_NUMERIC_MESSAGE = '"%field" should be numeric.'
SOURCE_ITEM_UNKNOWN_STATUS_MESSAGE = '"%field" should a known status.'
# An unknown SKU or source code fails at the database (Magento 2.4.6 reports, HTTP 400).
SOURCE_ITEMS_NOT_SAVED_MESSAGE = "Could not save Source Item"

# Magento\CatalogInventory\Model\StockRegistry::resolveProductId (HTTP 404, ["<sku>"]), and
# ProductRepository::get, the text the rest of the catalog API uses for a missing product.
STOCK_ITEM_UNKNOWN_SKU_MESSAGE = 'Product with SKU "%1" does not exist'
PRODUCT_NOT_FOUND_MESSAGE = (
    "The product that was requested doesn't exist. Verify the product and try again."
)
UNKNOWN_PRODUCT_MESSAGES = (STOCK_ITEM_UNKNOWN_SKU_MESSAGE, PRODUCT_NOT_FOUND_MESSAGE)
# Magento\Catalog\Model\Product\Price\Validation\InvalidSkuProcessor::isSkuListValid: a price
# read (POST /V1/products/base-prices-information) naming a SKU Magento does not know, or one
# without a price of its own, refuses the whole request (HTTP 404, {"sku": "A1, B2"}).
PRICES_UNKNOWN_SKU_MESSAGE = "Requested product doesn't exist: %sku"
PRICES_UNKNOWN_SKUS_MESSAGE = "Requested products don't exist: %sku"
PRICES_UNKNOWN_SKUS_MESSAGES = (PRICES_UNKNOWN_SKU_MESSAGE, PRICES_UNKNOWN_SKUS_MESSAGE)

# --- our own sentences ---------------------------------------------------------------------

BEARER_TOKEN_HINT = (
    "Magento 2.4.4 and later refuse an integration's access token used as a bearer token "
    "unless Stores › Configuration › Services › OAuth › Consumer Settings › "
    '"Allow OAuth Access Tokens to be used as standalone Bearer tokens" is set to Yes '
    "(config path oauth/consumer/enable_integration_as_bearer)."
)
WRONG_URL_HINT = (
    "Check the Magento base URL: it should be the store's root address "
    "(e.g. https://shop.example.com), without /admin or /rest."
)

DEFAULT_TIMEOUT = 30.0
DEFAULT_POOL_SIZE = 10
# Reads for reconciliation: source items per page, SKUs per base-prices-information request.
DEFAULT_SEARCH_PAGE_SIZE = 500
MSI_MODULE = "Magento_InventoryApi"
# Stock item id in the legacy PUT URL: Magento looks the item up by SKU and ignores it.
LEGACY_STOCK_ITEM_ID = 1
USER_AGENT = "acumatica-magento-connector"


# --- results -------------------------------------------------------------------------------


@dataclass
class PriceFailure:
    """One failure row of a base-prices answer.

    `skus` are the SKUs of the request the failure names (matched case-insensitively, as
    Magento matches SKUs); empty when it names none. `unknown_sku` means Magento does not
    know the SKU as a product with a price of its own: the message is skipped, not failed.
    """

    message: str
    skus: list[str] = field(default_factory=list)
    unknown_sku: bool = False


@dataclass
class CallResult:
    status_code: int
    duration_ms: float
    endpoint: str
    failures: list[PriceFailure] = field(default_factory=list)


@dataclass
class SourceItem:
    sku: str
    source_code: str
    quantity: float
    status: int


@dataclass
class SourceItemPage:
    """One page of GET /V1/inventory/source-items. Magento answers a page past the end with
    the last page again: `last` says when to stop (page size × current page ≥ total count)."""

    items: list[SourceItem]
    total_count: int
    current_page: int
    page_size: int
    result: CallResult

    @property
    def last(self) -> bool:
        return not self.items or self.page_size * self.current_page >= self.total_count


@dataclass
class BasePrice:
    sku: str
    price: float
    store_id: int


@dataclass
class BasePriceLookup:
    """Base prices of the SKUs asked for; `unknown_skus` are those Magento does not know (or
    that have no price of their own), as it named them."""

    prices: list[BasePrice] = field(default_factory=list)
    unknown_skus: list[str] = field(default_factory=list)
    calls: int = 0
    duration_ms: float = 0.0


@dataclass
class StoreInfo:
    code: str
    id: int
    website_id: int
    base_currency_code: str


@dataclass
class ConnectionReport:
    module_count: int
    stores: list[StoreInfo]
    msi_available: bool = False
    duration_ms: float = 0.0

    def summary(self) -> str:
        stores = "; ".join(
            f"{s.code} (id {s.id}, website {s.website_id}, base currency {s.base_currency_code})"
            for s in self.stores
        )
        msi = (
            f"MSI ({MSI_MODULE}) is installed"
            if self.msi_available
            else f"MSI ({MSI_MODULE}) is not installed: send stock as single-source stock items"
        )
        return (
            f"Connected to Magento: {self.module_count} modules enabled; {msi}. "
            f"Stores: {stores or 'none'}."
        )


# --- errors --------------------------------------------------------------------------------


class MagentoError(CallError):
    """A Magento call that did not succeed. `str(error)` is a sentence for an operator."""


class MagentoConfigError(MagentoError):
    """The settings are wrong (URL, token, store code): not the message's fault."""

    trips_outage_guard = True


class MagentoAuthError(MagentoConfigError):
    pass


class MagentoRouteNotFound(MagentoConfigError):
    pass


class MagentoRetryableError(MagentoError):
    retryable = True


class MagentoTimeout(MagentoRetryableError):
    pass


class MagentoConnectionError(MagentoRetryableError):
    pass


class MagentoServerError(MagentoRetryableError):
    pass


class MagentoMaintenance(MagentoServerError):
    """Magento's maintenance page: the whole store is down on purpose. It pauses sending
    (the outage guard) instead of using up the backlog's attempts."""

    trips_outage_guard = True


class MagentoDataError(MagentoError):
    """Magento refused the data (400 validation): the message fails at once."""

    def __init__(self, message: str, *, errors: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.errors = list(errors)


class MagentoInputLimitError(MagentoError):
    """Magento's web-API input limit refused the list: send it again in pieces of max_items."""

    def __init__(self, message: str, *, max_items: int = 0, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.max_items = max_items


class MagentoUnknownSku(MagentoError):
    """Magento has no product with this SKU: the message is skipped, not failed."""

    def __init__(self, message: str, *, sku: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.sku = sku


# --- Magento's error bodies ----------------------------------------------------------------


def php_string(value: Any) -> str:
    """A value as PHP prints it into a phrase (1.0 -> "1", True -> "1", None -> "")."""
    if value is None or value is False:
        return ""
    if value is True:
        return "1"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def fill_placeholders(template: str, parameters: Any) -> str:
    """Fill a Magento phrase: `%name` from an object's keys, `%1`, `%2` … from a list.

    Works like Magento's Phrase placeholder renderer (PHP `strtr`: the longest placeholder
    wins; unknown ones stay). Base-prices failures pair named placeholders with a list
    (`"Invalid attribute %fieldName = %fieldValue."`, `["SKU", "X1"]`): there the names
    take the list's values in the order they appear.
    """
    if isinstance(parameters, Mapping):
        pairs = {f"%{key}": php_string(value) for key, value in parameters.items()}
    elif isinstance(parameters, list | tuple):
        pairs = {f"%{index}": php_string(value) for index, value in enumerate(parameters, 1)}
        if not any(key in template for key in pairs):
            names = dict.fromkeys(re.findall(r"%[A-Za-z_]\w*", template))
            pairs.update(zip(names, list(pairs.values()), strict=False))
    else:
        return template
    if not pairs:
        return template
    pattern = "|".join(re.escape(key) for key in sorted(pairs, key=len, reverse=True))
    return re.sub(pattern, lambda match: pairs[match.group(0)], template)


def error_messages(body: Mapping[str, Any]) -> list[str]:
    """The filled messages of an error body's `errors[]`."""
    messages = []
    for error in body.get("errors") or []:
        if isinstance(error, Mapping) and error.get("message"):
            messages.append(fill_placeholders(str(error["message"]), error.get("parameters")))
    return messages


def readable_message(body: Any) -> str:
    """One sentence from Magento's error JSON: the message, then its `errors[]` (filled)."""
    if not isinstance(body, Mapping) or not body.get("message"):
        return excerpt(json.dumps(body)) if body not in (None, "") else ""
    message = fill_placeholders(str(body["message"]), body.get("parameters"))
    extra = [text for text in error_messages(body) if text not in message]
    if extra:
        message = f"{message.rstrip()} ({'; '.join(extra)})"
    return message





def classify_response(
    status_code: int,
    body: str,
    *,
    content_type: str = "",
    location: str = "",
    endpoint: str = "",
    duration_ms: float = 0.0,
    connection_test: bool = False,
    secrets: Sequence[str] = (),
) -> MagentoError | None:
    """Map one HTTP answer to the error it means, or None for a success with JSON.

    The one place where Magento's answers get their meaning:
    1. 2xx with JSON: success. 2xx with a page, or a 3xx (often to a login page): on the
       connection test a wrong URL; while sending, a passing fault (a proxy page), retried.
    2. 401/403: the token. 404: "no route" or a web server's page is the URL; Magento's own
       "product doesn't exist" is an unknown SKU; any other 404 is about the data.
    3. 400: the input limit (split the batch), a GET with store code `all` (the settings),
       anything else is a data error. 408, 429 and 5xx: retried.
    """
    kwargs: dict[str, Any] = {
        "status_code": status_code,
        "duration_ms": duration_ms,
        "endpoint": endpoint,
    }
    body = redact(body, secrets)  # before any excerpt cuts a secret in half (http_failures)
    is_json, data = parse_json(body) if "html" not in content_type.lower() else (False, None)
    detail = redact(readable_message(data) if is_json else excerpt(body), secrets)
    answer = f"HTTP {status_code}: {detail}" if detail else f"HTTP {status_code}"
    template = str(data.get("message", "")) if is_json and isinstance(data, Mapping) else ""

    if 200 <= status_code < 300:
        if is_json:
            return None
        message = f"Magento answered {endpoint} with a web page instead of JSON ({answer})."
        if connection_test:
            return MagentoRouteNotFound(f"{message} {WRONG_URL_HINT}", **kwargs)
        return MagentoRetryableError(message, **kwargs)

    if 300 <= status_code < 400:
        target = redact(location, secrets) or "another page"
        login = ", a login page" if "login" in location.lower() or "/admin" in location else ""
        message = (
            f"Magento redirected {endpoint} to {target} (HTTP {status_code}{login}) "
            "instead of answering."
        )
        if connection_test:
            return MagentoRouteNotFound(f"{message} {WRONG_URL_HINT}", **kwargs)
        return MagentoRetryableError(message, **kwargs)

    if status_code in (401, 403):
        return MagentoAuthError(
            f"Magento refused the access token ({answer}). Check the token and the resources "
            f"its integration may access. {BEARER_TOKEN_HINT}",
            **kwargs,
        )

    if status_code in (404, 405):
        if template in PRICES_UNKNOWN_SKUS_MESSAGES:
            parameters = data.get("parameters")
            named = parameters.get("sku") if isinstance(parameters, Mapping) else None
            return MagentoUnknownSku(
                f"Magento has no such product ({answer}).", sku=php_string(named) or None, **kwargs
            )
        if template in UNKNOWN_PRODUCT_MESSAGES:
            parameters = data.get("parameters")
            sku = str(parameters[0]) if isinstance(parameters, list) and parameters else None
            return MagentoUnknownSku(f"Magento has no such product ({answer}).", sku=sku, **kwargs)
        if not is_json or template == NO_ROUTE_MESSAGE or status_code == 405:
            return MagentoRouteNotFound(
                f"Magento has no API route for {endpoint} ({answer}). {WRONG_URL_HINT} "
                "Also check the store code: it is part of the URL.",
                **kwargs,
            )
        return MagentoDataError(
            f"Magento did not find what {endpoint} refers to ({answer}).",
            errors=error_messages(data),
            **kwargs,
        )

    if status_code in (408, 429) or status_code >= 500:
        if status_code == 503 and not is_json and MAINTENANCE_PAGE_MARK in body.lower():
            return MagentoMaintenance(
                f"Magento is in maintenance mode ({answer}); sending resumes when it answers "
                "again.",
                **kwargs,
            )
        if status_code == 503 and not is_json:
            message = (
                f"Magento is unavailable ({answer}): in maintenance mode or overloaded. "
                "Try again later."
            )
        else:
            who = "Magento" if is_json else "The web server"
            message = f"{who} failed on {endpoint} ({answer})."
        return MagentoServerError(message, **kwargs)

    if status_code == 400 and template == INPUT_LIMIT_MESSAGE:
        parameters = data.get("parameters")
        max_items = parameters.get("max") if isinstance(parameters, Mapping) else None
        try:
            max_items = int(max_items)
        except (TypeError, ValueError):
            max_items = 0
        return MagentoInputLimitError(
            f"Magento's web-API input limit refused the list ({answer}). "
            f"Lower the batch count to {max_items or 'the limit'} or less.",
            max_items=max_items,
            **kwargs,
        )
    if status_code == 400 and template == GET_WITH_ALL_STORE_MESSAGE:
        return MagentoConfigError(
            f"Magento refused to read with store code 'all' ({answer}). "
            "Use a store view code such as 'default'.",
            **kwargs,
        )
    message = f"Magento refused the data ({answer})."
    if template == SOURCE_ITEMS_NOT_SAVED_MESSAGE:
        message += " An unknown SKU or source code in the batch is the usual cause."
    return MagentoDataError(
        message,
        errors=[redact(text, secrets) for text in error_messages(data)] if is_json else [],
        **kwargs,
    )



def classify_transport_error(
    exc: BaseException,
    *,
    url: str,
    timeout: float,
    endpoint: str = "",
    duration_ms: float = 0.0,
    secrets: Sequence[str] = (),
) -> MagentoError:
    """Map a failure to get any answer (DNS, refused, TLS, timeout, dropped) to an error."""
    kwargs: dict[str, Any] = {"status_code": None, "duration_ms": duration_ms, "endpoint": endpoint}
    failure = describe_transport_failure(
        exc, system="Magento", url_name="Magento base URL", url=url, timeout=timeout,
        endpoint=endpoint, secrets=secrets,
    )
    if failure.kind == http_failures.INVALID_URL:
        base = redact(url.split("/rest/", 1)[0], secrets)
        return MagentoConfigError(
            f"The Magento base URL '{base}' is not a valid address. Use the store's root "
            "address with its scheme, e.g. https://shop.example.com.",
            **kwargs,
        )
    if failure.kind in (http_failures.CONNECT_TIMEOUT, http_failures.READ_TIMEOUT):
        return MagentoTimeout(failure.sentence, **kwargs)
    return MagentoConnectionError(failure.sentence, **kwargs)


# --- the client ----------------------------------------------------------------------------


def _normalize_base_url(base_url: str) -> str:
    """The store's root: a pasted API address (…/rest/default/V1) is cut back to the root."""
    parts = urlsplit(base_url.strip())
    path = re.split(r"/rest(?:/|$)", parts.path, maxsplit=1)[0].rstrip("/")
    return f"{parts.scheme}://{parts.netloc}{path}" if parts.netloc else base_url.strip()


def _price_matches(value: Any, failed_value: str) -> bool:
    try:
        return float(value) == float(failed_value)
    except (TypeError, ValueError):
        return php_string(value) == failed_value


def _skus_named(template: str, parameters: Any, rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The request's SKUs a base-prices failure names (case-insensitive, as Magento does).

    Magento gives no row index. "Invalid attribute" names the SKU for the SKU form and only
    the value for the price form, so a price failure goes to the rows with that price;
    the store form names the SKU first. Other texts: any parameter equal to a SKU.
    """
    values = list(parameters.values()) if isinstance(parameters, Mapping) else list(parameters)
    named: list[str]
    if template == PRICE_INVALID_ATTRIBUTE_MESSAGE and len(values) >= 2:
        field_name, field_value = php_string(values[0]), php_string(values[1])
        if isinstance(parameters, Mapping):
            field_name = php_string(parameters.get("fieldName", field_name))
            field_value = php_string(parameters.get("fieldValue", field_value))
        if field_name == PRICE_FIELD_PRICE:
            return [
                str(row["sku"]) for row in rows if _price_matches(row.get("price"), field_value)
            ]
        named = [field_value]
    elif template == PRICE_STORE_NOT_FOUND_MESSAGE and values:
        named = [
            php_string(parameters.get("SKU") if isinstance(parameters, Mapping) else values[0])
        ]
    else:
        named = [php_string(value) for value in values]
    wanted = {value.casefold() for value in named}
    return [str(row["sku"]) for row in rows if str(row["sku"]).casefold() in wanted]


def _unknown_sku(template: str, parameters: Any) -> bool:
    if template != PRICE_INVALID_ATTRIBUTE_MESSAGE:
        return False
    if isinstance(parameters, Mapping):
        return parameters.get("fieldName") == PRICE_FIELD_SKU
    return bool(parameters) and php_string(parameters[0]) == PRICE_FIELD_SKU


def parse_price_failures(
    answer: Any, rows: Sequence[Mapping[str, Any]], *, secrets: Sequence[str] = ()
) -> list[PriceFailure]:
    """The failures of a base-prices answer (a list; `[]` when every row was saved)."""
    failures = []
    for failure in answer if isinstance(answer, list) else []:
        if not isinstance(failure, Mapping):
            continue
        template = str(failure.get("message", ""))
        parameters = failure.get("parameters") or []
        failures.append(
            PriceFailure(
                message=redact(fill_placeholders(template, parameters), secrets),
                skus=_skus_named(template, parameters, rows),
                unknown_sku=_unknown_sku(template, parameters),
            )
        )
    return failures


class MagentoClient:
    """A Magento store's REST API: `{base_url}/rest/{store_code}/V1/…` with a bearer token.

    One `requests.Session` with a connection pool: keep one client per worker thread and reuse
    it across calls (keep-alive), close it when done.
    Redirects are not followed (a redirect is how a wrong URL usually shows) and nothing is
    retried here: retrying is the processor's decision.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        store_code: str = "default",
        timeout: float = DEFAULT_TIMEOUT,
        verify_tls: bool = True,
        pool_size: int = DEFAULT_POOL_SIZE,
    ) -> None:
        self.base_url = _normalize_base_url(base_url)
        self.store_code = (store_code or "default").strip()
        self.timeout = float(timeout)
        self.verify_tls = verify_tls
        self._token = token
        self._session = requests.Session()
        self._session.headers.update(
            {
                "Authorization": f"Bearer {token}",
                "Accept": "application/json",
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
            }
        )
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        if not verify_tls:
            # The operator turned verification off on purpose: a warning per call would only
            # bury the log.
            warnings.filterwarnings("ignore", message="Unverified HTTPS request")

    def __repr__(self) -> str:
        return f"MagentoClient(base_url={self.base_url!r}, store_code={self.store_code!r})"

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> MagentoClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- calls ------------------------------------------------------------------------------

    def modules(self) -> list[str]:
        data, _ = self._call("GET", "/V1/modules", connection_test=True)
        return [str(name) for name in data or []]

    def store_configs(self) -> list[dict[str, Any]]:
        data, _ = self._call("GET", "/V1/store/storeConfigs", connection_test=True)
        return [dict(item) for item in data or []]

    def test_connection(self) -> ConnectionReport:
        """GET modules (any valid token passes), then the store configs to show."""
        started = time.perf_counter()
        modules = self.modules()
        stores = [
            StoreInfo(
                code=str(config.get("code", "")),
                id=int(config.get("id", 0)),
                website_id=int(config.get("website_id", 0)),
                base_currency_code=str(config.get("base_currency_code", "")),
            )
            for config in self.store_configs()
        ]
        return ConnectionReport(
            module_count=len(modules),
            stores=stores,
            msi_available=MSI_MODULE in modules,
            duration_ms=(time.perf_counter() - started) * 1000,
        )

    def post_base_prices(self, prices: Sequence[Mapping[str, Any]]) -> CallResult:
        """POST /V1/products/base-prices. Valid rows are saved even when others fail."""
        rows = [
            {
                "sku": str(row["sku"]),
                "price": float(row["price"]),
                "store_id": int(row.get("store_id", 0)),
            }
            for row in prices
        ]
        data, result = self._call("POST", "/V1/products/base-prices", {"prices": rows})
        result.failures = parse_price_failures(data, rows, secrets=[self._token])
        return result

    def post_source_items(self, items: Sequence[Mapping[str, Any]]) -> CallResult:
        """POST /V1/inventory/source-items (MSI). All or nothing: one bad item refuses all."""
        rows = []
        for item in items:
            quantity = float(item["quantity"])
            status = item.get("status")
            rows.append(
                {
                    "sku": str(item["sku"]),
                    "source_code": str(item["source_code"]),
                    "quantity": quantity,
                    "status": int(status) if status is not None else int(quantity > 0),
                }
            )
        _, result = self._call("POST", "/V1/inventory/source-items", {"sourceItems": rows})
        return result

    def put_stock_item(self, sku: str, qty: float, is_in_stock: bool) -> CallResult:
        """PUT /V1/products/{sku}/stockItems/1: single-source stock, one item a call.

        Magento merges the fields sent onto the stored stock item, so only these two go.
        """
        path = f"/V1/products/{quote(sku, safe='')}/stockItems/{LEGACY_STOCK_ITEM_ID}"
        body = {"stockItem": {"qty": float(qty), "is_in_stock": bool(is_in_stock)}}
        try:
            _, result = self._call("PUT", path, body)
        except MagentoUnknownSku as error:
            error.sku = sku
            raise
        return result

    # -- reads (reconciliation) --------------------------------------------------------------

    def search_source_items(
        self,
        skus: Sequence[str] | None = None,
        *,
        sku_prefix: str | None = None,
        source_code: str | None = None,
        page_size: int = DEFAULT_SEARCH_PAGE_SIZE,
        current_page: int = 1,
    ) -> SourceItemPage:
        """GET /V1/inventory/source-items (MSI): one page, sorted by SKU then source.

        `skus` filters with `in` (a comma-separated list), `sku_prefix` with `like`; both
        match case-insensitively, as Magento's collation does.
        """
        if page_size < 1 or current_page < 1:
            raise ValueError("page_size and current_page start at 1")
        filters: list[tuple[str, str, str]] = []
        if skus is not None:
            filters.append(("sku", ",".join(str(sku) for sku in skus), "in"))
        if sku_prefix:
            escaped = re.sub(r"([\\%_])", r"\\\1", sku_prefix)
            filters.append(("sku", f"{escaped}%", "like"))
        if source_code:
            filters.append(("source_code", source_code, "eq"))
        params: list[tuple[str, str]] = []
        for group, (name, value, condition) in enumerate(filters):
            prefix = f"searchCriteria[filter_groups][{group}][filters][0]"
            params += [
                (f"{prefix}[field]", name),
                (f"{prefix}[value]", value),
                (f"{prefix}[condition_type]", condition),
            ]
        for index, name in enumerate(("sku", "source_code")):
            params += [
                (f"searchCriteria[sortOrders][{index}][field]", name),
                (f"searchCriteria[sortOrders][{index}][direction]", "ASC"),
            ]
        params += [
            ("searchCriteria[pageSize]", str(page_size)),
            ("searchCriteria[currentPage]", str(current_page)),
        ]
        data, result = self._call("GET", "/V1/inventory/source-items", query=urlencode(params))
        data = data if isinstance(data, Mapping) else {}
        items = [
            SourceItem(
                sku=str(item.get("sku", "")),
                source_code=str(item.get("source_code", "")),
                quantity=float(item.get("quantity") or 0),
                status=int(item.get("status") or 0),
            )
            for item in data.get("items") or []
            if isinstance(item, Mapping)
        ]
        return SourceItemPage(
            items=items,
            total_count=int(data.get("total_count") or 0),
            current_page=current_page,
            page_size=page_size,
            result=result,
        )

    def iter_source_items(
        self,
        skus: Sequence[str] | None = None,
        *,
        sku_prefix: str | None = None,
        source_code: str | None = None,
        page_size: int = DEFAULT_SEARCH_PAGE_SIZE,
    ) -> Iterator[SourceItemPage]:
        """Every page, until page size × current page reaches the total count."""
        current_page = 1
        while True:
            page = self.search_source_items(
                skus, sku_prefix=sku_prefix, source_code=source_code, page_size=page_size,
                current_page=current_page,
            )
            yield page
            if page.last:
                return
            current_page += 1

    def get_base_prices(self, skus: Sequence[str]) -> BasePriceLookup:
        """POST /V1/products/base-prices-information for these SKUs (one request per
        DEFAULT_SEARCH_PAGE_SIZE). Magento refuses a whole request naming an unknown SKU: those
        it names are set aside and the rest asked again."""
        lookup = BasePriceLookup()
        wanted = list(dict.fromkeys(str(sku) for sku in skus))
        pending = [
            wanted[start:start + DEFAULT_SEARCH_PAGE_SIZE]
            for start in range(0, len(wanted), DEFAULT_SEARCH_PAGE_SIZE)
        ]
        while pending:
            chunk = pending.pop()
            if not chunk:
                continue
            lookup.calls += 1
            try:
                data, result = self._call(
                    "POST", "/V1/products/base-prices-information", {"skus": chunk}
                )
            except MagentoUnknownSku as error:
                lookup.duration_ms += error.duration_ms
                named = {part.strip().casefold() for part in (error.sku or "").split(", ")}
                unknown = [sku for sku in chunk if sku.casefold() in named]
                if not unknown and len(chunk) == 1:
                    unknown = chunk  # a SKU that holds ", " itself: named but not matched
                if unknown:
                    lookup.unknown_skus += unknown
                    pending.append([sku for sku in chunk if sku not in unknown])
                else:
                    half = len(chunk) // 2
                    pending += [chunk[:half], chunk[half:]]
                continue
            lookup.duration_ms += result.duration_ms
            for row in data if isinstance(data, list) else []:
                if isinstance(row, Mapping) and row.get("sku") is not None:
                    lookup.prices.append(
                        BasePrice(
                            sku=str(row["sku"]),
                            price=float(row.get("price") or 0),
                            store_id=int(row.get("store_id") or 0),
                        )
                    )
        return lookup

    # -- plumbing ---------------------------------------------------------------------------

    def _url(self, method: str, path: str) -> str:
        # Magento refuses reads with store code `all` (the admin scope): read the default view.
        store_code = "default" if method == "GET" and self.store_code == "all" else self.store_code
        return f"{self.base_url}/rest/{quote(store_code, safe='')}{path}"

    def _call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        connection_test: bool = False,
        query: str = "",
    ) -> tuple[Any, CallResult]:
        url = self._url(method, path) + (f"?{query}" if query else "")
        endpoint = f"{method} {path}"
        secrets = [self._token]
        data = json.dumps(body).encode() if body is not None else None
        started = time.perf_counter()
        try:
            # `verify` on every call: requests lets REQUESTS_CA_BUNDLE override the session's.
            response = self._session.request(
                method,
                url,
                data=data,
                timeout=self.timeout,
                verify=self.verify_tls,
                allow_redirects=False,
            )
            text = response.text
        except requests.RequestException as exc:
            raise classify_transport_error(
                exc,
                url=url,
                timeout=self.timeout,
                endpoint=endpoint,
                duration_ms=(time.perf_counter() - started) * 1000,
                secrets=secrets,
            ) from None
        duration_ms = (time.perf_counter() - started) * 1000
        error = classify_response(
            response.status_code,
            text,
            content_type=response.headers.get("Content-Type", ""),
            location=response.headers.get("Location", ""),
            endpoint=endpoint,
            duration_ms=duration_ms,
            connection_test=connection_test,
            secrets=secrets,
        )
        if error is not None:
            raise error
        return json.loads(text), CallResult(response.status_code, duration_ms, endpoint)
