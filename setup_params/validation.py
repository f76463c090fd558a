"""The rules a setting's value must follow.

One place for the Setup Parameters form and `connector_config set`, so both refuse a bad
value with the same sentence. Keys are the settings' snake_case names, as on the command
line. `str(InvalidSetting)` is the sentence shown next to the field or on stderr.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from connector.acumatica import normalize_instance_url, valid_client_id
from setup_params.models import AcumaticaSettings, parse_warehouse_sources

# Magento's web-API input limit, when on, refuses lists longer than this (DESIGN.md 8).
MAGENTO_INPUT_LIMIT = 20

MAGENTO_KEYS = (
    "magento_url",
    "magento_token",
    "store_code",
    "price_store_id",
    "source_code",
    "use_msi",
    "timeout",
    "verify_tls",
)
QUEUE_KEYS = (
    "threshold_count",
    "batch_count",
    "retry_count",
    "check_process_time",
    "process_sleep_time",
    "senders",
)
PROFILE_KEYS = (
    "push_header_name",
    "push_max_bytes",
    "inventory_query",
    "inventory_sku_field",
    "inventory_warehouse_field",
    "inventory_qty_field",
    "price_query",
    "price_sku_field",
    "price_field",
    "warehouse_sources",
    "outage_threshold",
)
# Acumatica's settings on the command line: prefixed, because `timeout`, `batch_size` and
# the like would clash with Magento's and the queue's. Key → AcumaticaSettings field.
ACUMATICA_FIELDS = {
    "acumatica_url": "instance_url",
    "acumatica_endpoint": "endpoint",
    "acumatica_version": "version",
    "acumatica_tenant": "tenant",
    "acumatica_branch": "branch",
    "acumatica_auth": "auth",
    "acumatica_username": "username",
    "acumatica_password": "password",
    "acumatica_client_id": "client_id",
    "acumatica_client_secret": "client_secret",
    "acumatica_scopes": "scopes",
    "acumatica_concurrency": "concurrency",
    "acumatica_time_zone": "time_zone",
    "acumatica_time_offset": "time_offset",
    "acumatica_page_size": "page_size",
    "acumatica_batch_size": "batch_size",
    "acumatica_timeout": "timeout",
}
ACUMATICA_KEYS = tuple(ACUMATICA_FIELDS)
SETTING_KEYS = MAGENTO_KEYS + QUEUE_KEYS + PROFILE_KEYS + ACUMATICA_KEYS
SECRET_KEYS = ("magento_token", "acumatica_password", "acumatica_client_secret")
BOOLEAN_KEYS = ("use_msi", "verify_tls")

# A pasted API address: https://shop.example.com/rest/default/V1 → https://shop.example.com.
REST_PATH = re.compile(r"/rest(/|$)", re.IGNORECASE)
# Magento's own rule for store codes (Magento\Store\Model\Validation\StoreCodeValidator).
STORE_CODE = re.compile(r"^[a-z][a-z0-9_]*$", re.IGNORECASE)
# Letters, digits and dashes only: WSGI servers drop request headers with underscores, so a
# header named X_Secret would never reach the receiver.
HEADER_NAME = re.compile(r"^[A-Za-z0-9-]+$")
TEXT_MAX_LENGTH = {"store_code": 64, "source_code": 64, "magento_url": 500, "acumatica_url": 500}
TEXT_DEFAULT_MAX_LENGTH = 100
# An Acumatica endpoint version: 24.200.001, 6.00.001.
ENDPOINT_VERSION = re.compile(r"^\d{1,3}\.\d{2,3}\.\d{3}$")
# RFC 6749's scope-token: printable ASCII except space, double quote and backslash.
SCOPE_TOKEN = re.compile(r'^[\x21\x23-\x5B\x5D-\x7E]+$')
REQUIRED_SCOPE = "api"
# Names in the time zone database that are not places: the local machine's zone is not the
# instance's, and "Factory" means "unknown".
NOT_A_PLACE = {"localtime", "posixrules", "Factory"}
SECRET_MAX_LENGTH = 1000
ACUMATICA_OPTIONAL_TEXT = {
    # key → (label, longest)
    "acumatica_tenant": ("Tenant", 100),
    "acumatica_branch": ("Branch", 100),
    "acumatica_username": ("Username", 150),
}


class InvalidSetting(ValueError):
    """A value a setting cannot take."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.message = message

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class WholeNumber:
    label: str
    minimum: int
    maximum: int | None = None
    unit: str = ""

    def amount(self, number: int) -> str:
        if not self.unit:
            return str(number)
        return f"{number} {self.unit if number != 1 else self.unit.removesuffix('s')}"

    def check(self, key: str, value: int) -> int:
        too_small = value < self.minimum
        too_big = self.maximum is not None and value > self.maximum
        if self.maximum is not None and (too_small or too_big):
            raise InvalidSetting(
                key,
                f"{self.label} must be between {self.minimum} and {self.amount(self.maximum)}.",
            )
        if too_small:
            raise InvalidSetting(key, f"{self.label} must be at least {self.amount(self.minimum)}.")
        return value


WHOLE_NUMBERS = {
    "threshold_count": WholeNumber("Threshold count", 1),
    "batch_count": WholeNumber("Batch count", 1, 10000),
    "retry_count": WholeNumber("Retry count", 1, 100),
    "check_process_time": WholeNumber("Check process time", 1, 59, "seconds"),
    "process_sleep_time": WholeNumber("Process sleep time", 1, unit="seconds"),
    "senders": WholeNumber("Senders", 1, 16),
    "timeout": WholeNumber("Timeout", 1, 600, "seconds"),
    "price_store_id": WholeNumber("Price store id", 0),
    "push_max_bytes": WholeNumber("Largest push notification", 1024, 100 * 1024 * 1024, "bytes"),
    "outage_threshold": WholeNumber("Outage threshold", 1, 100),
    "acumatica_concurrency": WholeNumber("Concurrency level", 1, 25),
    "acumatica_time_offset": WholeNumber("Time offset", 0, 3600, "seconds"),
    "acumatica_page_size": WholeNumber("Page size", 1, 10000),
    "acumatica_batch_size": WholeNumber("Batch size", 1, 10000),
    "acumatica_timeout": WholeNumber("Timeout", 1, 600, "seconds"),
}

TEXT_LABELS = {
    "magento_url": "Magento URL",
    "magento_token": "Bearer token",
    "store_code": "Store code",
    "source_code": "MSI source code",
    "push_header_name": "Push header name",
    "inventory_query": "Inventory inquiry",
    "inventory_sku_field": "Inventory SKU field",
    "inventory_warehouse_field": "Inventory warehouse field",
    "inventory_qty_field": "Inventory quantity field",
    "price_query": "Price inquiry",
    "price_sku_field": "Price SKU field",
    "price_field": "Price field",
    "warehouse_sources": "Warehouses to sources",
    "acumatica_url": "Instance URL",
    "acumatica_password": "Password",
    "acumatica_client_secret": "Client secret",
}


def clean_magento_url(value: str) -> tuple[str, str]:
    """The store's root URL, and a notice for the user when a /rest… part was cut off.

    http(s) with a host; a pasted API address (…/rest/default/V1) is cut back to the root,
    because the connector adds /rest/<store code>/V1 itself; a trailing slash is dropped.
    """
    key = "magento_url"
    url = (value or "").strip()
    if not url:
        raise InvalidSetting(key, "Enter the Magento URL, e.g. https://shop.example.com.")
    if any(character.isspace() for character in url):
        raise InvalidSetting(key, "The Magento URL must not contain spaces.")
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise InvalidSetting(
            key, "The Magento URL must start with http:// or https://, e.g. https://shop.example.com."
        )
    try:
        parts.port  # noqa: B018 - urlsplit checks the port only when asked
    except ValueError as error:
        raise InvalidSetting(key, "The Magento URL has a port that is not a number.") from error
    if not parts.hostname:
        raise InvalidSetting(key, "The Magento URL must name a host, e.g. https://shop.example.com.")
    if parts.query or parts.fragment:
        raise InvalidSetting(key, "The Magento URL must not contain a ?query or a #fragment.")
    path = parts.path
    notice = ""
    match = REST_PATH.search(path)
    if match:
        path = path[: match.start()]
    cleaned = urlunsplit((parts.scheme.lower(), parts.netloc, path.rstrip("/"), "", ""))
    if match:
        notice = (
            f"The Magento URL was cut back to {cleaned} "
            "(the connector adds /rest/<store code>/V1 itself)."
        )
    maximum = TEXT_MAX_LENGTH[key]
    if len(cleaned) > maximum:
        raise InvalidSetting(key, f"The Magento URL must be at most {maximum} characters.")
    return cleaned, notice


def check_token(token: str) -> str:
    token = (token or "").strip()
    if not token:
        raise InvalidSetting("magento_token", "The bearer token must not be empty.")
    if any(character.isspace() for character in token):
        raise InvalidSetting(
            "magento_token", "The bearer token must not contain spaces or line breaks."
        )
    return token


def check_token_confirmation(token: str, confirmation: str) -> None:
    if (token or "") != (confirmation or ""):
        raise InvalidSetting(
            "magento_token", "The bearer token and its confirmation do not match."
        )


def clean_acumatica_url(value: str) -> tuple[str, str]:
    """The instance's address, and a notice for the user when an /entity… part was cut off.

    http(s) with a host; a pasted API or page address (…/entity/Default/24.200.001,
    …/Main?ScreenId=…) is cut back to the instance, because the connector adds /entity/…
    itself; a trailing slash is dropped.
    """
    key = "acumatica_url"
    url = (value or "").strip()
    example = "e.g. https://mycompany.acumatica.com or https://erp.example.com/AcumaticaERP"
    if not url:
        raise InvalidSetting(key, f"Enter the Acumatica instance URL, {example}.")
    if any(character.isspace() for character in url):
        raise InvalidSetting(key, "The instance URL must not contain spaces.")
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise InvalidSetting(
            key, f"The instance URL must start with http:// or https://, {example}."
        )
    try:
        parts.port  # noqa: B018 - urlsplit checks the port only when asked
    except ValueError as error:
        raise InvalidSetting(key, "The instance URL has a port that is not a number.") from error
    if not parts.hostname:
        raise InvalidSetting(key, f"The instance URL must name a host, {example}.")
    if "@" in parts.netloc:
        raise InvalidSetting(
            key,
            "The instance URL must not contain a user name or password: enter them in their "
            "own fields.",
        )
    instance, was_cut = normalize_instance_url(url)
    if not was_cut and (parts.query or parts.fragment):
        raise InvalidSetting(key, "The instance URL must not contain a ?query or a #fragment.")
    scheme, _, rest = instance.partition("://")
    cleaned = f"{scheme.lower()}://{rest}"
    maximum = TEXT_MAX_LENGTH[key]
    if len(cleaned) > maximum:
        raise InvalidSetting(key, f"The instance URL must be at most {maximum} characters.")
    notice = ""
    if was_cut:
        notice = (
            f"The instance URL was cut back to {cleaned} "
            "(the connector adds /entity/<endpoint>/<version> itself)."
        )
    return cleaned, notice


def check_secret(key: str, value: str) -> str:
    """A password or client secret: kept as typed (spaces may belong to it), never empty."""
    label = TEXT_LABELS[key]
    if not value:
        raise InvalidSetting(key, f"The {label.lower()} must not be empty.")
    if "\n" in value or "\r" in value:
        raise InvalidSetting(key, f"The {label.lower()} must not contain line breaks.")
    if len(value) > SECRET_MAX_LENGTH:
        raise InvalidSetting(
            key, f"The {label.lower()} must be at most {SECRET_MAX_LENGTH} characters."
        )
    if key == "acumatica_client_secret" and any(character.isspace() for character in value):
        raise InvalidSetting(key, "The client secret must not contain spaces.")
    return value


@cache
def time_zone_names() -> frozenset[str]:
    return frozenset(available_timezones() - NOT_A_PLACE)


def check_time_zone(value: str) -> str:
    key = "acumatica_time_zone"
    name = (value or "").strip()
    if not name:
        raise InvalidSetting(
            key, "Enter the instance's time zone, e.g. America/New_York, Europe/Berlin or UTC."
        )
    known = time_zone_names()
    if name in known or not known:
        try:
            ZoneInfo(name)
            return name
        except (ZoneInfoNotFoundError, ValueError):
            pass
    raise InvalidSetting(
        key,
        f"'{name}' is not an IANA time zone name: use the instance's zone as the time zone "
        "database names it, e.g. America/New_York, Europe/Berlin or UTC.",
    )


def check_scopes(value: str) -> str:
    key = "acumatica_scopes"
    scopes = (value or "").split()
    if not scopes:
        raise InvalidSetting(key, "Enter the scopes, e.g. openid api offline_access.")
    bad = [scope for scope in scopes if not SCOPE_TOKEN.match(scope)]
    if bad:
        raise InvalidSetting(
            key, f"'{bad[0]}' is not a scope: separate scopes with spaces, without quotes."
        )
    if REQUIRED_SCOPE not in scopes:
        raise InvalidSetting(
            key,
            "The scopes must include api (Acumatica's web services); the usual set is "
            "openid api offline_access.",
        )
    cleaned = " ".join(dict.fromkeys(scopes))
    if len(cleaned) > 200:
        raise InvalidSetting(key, "The scopes must be at most 200 characters.")
    return cleaned


def _check_acumatica_text(key: str, value: Any) -> str:
    text = str(value or "").strip()
    if key == "acumatica_endpoint":
        names = {name.lower(): name for name in AcumaticaSettings.Endpoint.values}
        if text.lower() not in names:
            raise InvalidSetting(
                key, f"The endpoint must be one of {', '.join(names.values())}."
            )
        return names[text.lower()]
    if key == "acumatica_version":
        if not ENDPOINT_VERSION.match(text):
            raise InvalidSetting(
                key,
                "The endpoint version must look like 24.200.001 (Test Connection lists the "
                "versions the instance offers).",
            )
        return text
    if key == "acumatica_auth":
        choices = AcumaticaSettings.Auth.values
        if text.lower() not in choices:
            raise InvalidSetting(
                key, f"The authentication must be {' or '.join(choices)}, not '{text}'."
            )
        return text.lower()
    if key == "acumatica_client_id":
        if text and not valid_client_id(text):
            raise InvalidSetting(
                key,
                "The client id must look like <GUID>@<Tenant>, e.g. "
                "9B6B0D52-3C4A-4E0B-8F0D-2A1C5E7B9D31@MyStore, as the Connected Applications "
                "form (SM303010) shows it.",
            )
        if len(text) > 200:
            raise InvalidSetting(key, "The client id must be at most 200 characters.")
        return text
    label, maximum = ACUMATICA_OPTIONAL_TEXT[key]
    if len(text) > maximum:
        raise InvalidSetting(key, f"{label} must be at most {maximum} characters.")
    return text


def check_sleep_time(process_sleep_time: int, check_process_time: int) -> None:
    """Each run sleeps between passes; a sleep as long as the run would leave one pass."""
    if process_sleep_time >= check_process_time:
        raise InvalidSetting(
            "process_sleep_time",
            f"Process sleep time ({process_sleep_time} s) must be less than the check process "
            f"time ({check_process_time} s).",
        )


def _check_text(key: str, value: str) -> str:
    label = TEXT_LABELS[key]
    text = (value or "").strip()
    if not text:
        raise InvalidSetting(key, f"{label} must not be empty.")
    maximum = TEXT_MAX_LENGTH.get(key, TEXT_DEFAULT_MAX_LENGTH)
    if key == "warehouse_sources":
        maximum = 1000
        try:
            parse_warehouse_sources(text)
        except ValueError as error:
            raise InvalidSetting(key, str(error)) from error
    if len(text) > maximum:
        raise InvalidSetting(key, f"{label} must be at most {maximum} characters.")
    if key == "store_code" and not STORE_CODE.match(text):
        raise InvalidSetting(
            key,
            "Store code may contain only letters (a-z), numbers (0-9) or underscore (_), "
            "and must start with a letter.",
        )
    if key == "source_code" and any(character.isspace() for character in text):
        raise InvalidSetting(key, "MSI source code must not contain spaces.")
    if key == "push_header_name" and not HEADER_NAME.match(text):
        raise InvalidSetting(
            key,
            "Push header name may contain only letters, digits and dashes, "
            "e.g. X-Connector-Secret.",
        )
    return text


def check_setting(key: str, value: Any) -> Any:
    """The value to store for `key`, or InvalidSetting with the sentence to show."""
    if key == "magento_url":
        return clean_magento_url(value)[0]
    if key == "magento_token":
        return check_token(value)
    if key == "acumatica_url":
        return clean_acumatica_url(value)[0]
    if key in ("acumatica_password", "acumatica_client_secret"):
        return check_secret(key, value)
    if key == "acumatica_time_zone":
        return check_time_zone(value)
    if key == "acumatica_scopes":
        return check_scopes(value)
    if key in ACUMATICA_OPTIONAL_TEXT or key in (
        "acumatica_endpoint", "acumatica_version", "acumatica_auth", "acumatica_client_id"
    ):
        return _check_acumatica_text(key, value)
    if key in WHOLE_NUMBERS:
        return WHOLE_NUMBERS[key].check(key, value)
    if key in BOOLEAN_KEYS:
        return bool(value)
    if key in TEXT_LABELS:
        return _check_text(key, value)
    raise InvalidSetting(key, unknown_key_message(key))


def parse_setting(key: str, text: str) -> Any:
    """A value typed on the command line (`KEY=VALUE`), converted and checked."""
    if key in WHOLE_NUMBERS:
        try:
            number = int(text.strip())
        except ValueError:
            raise InvalidSetting(
                key, f"{WHOLE_NUMBERS[key].label} must be a whole number, not '{text}'."
            ) from None
        return check_setting(key, number)
    if key in BOOLEAN_KEYS:
        word = text.strip().lower()
        if word not in ("true", "false"):
            raise InvalidSetting(key, f"{key} must be true or false, not '{text}'.")
        return word == "true"
    return check_setting(key, text)


def unknown_key_message(key: str) -> str:
    return f"Unknown setting '{key}'. Known settings: {', '.join(SETTING_KEYS)}."
