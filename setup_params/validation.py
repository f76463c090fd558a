"""The rules a setting's value must follow.

One place for the Setup Parameters form and `connector_config set`, so both refuse a bad
value with the same sentence. Keys are the settings' snake_case names, as on the command
line. `str(InvalidSetting)` is the sentence shown next to the field or on stderr.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from setup_params.models import parse_warehouse_sources

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
SETTING_KEYS = MAGENTO_KEYS + QUEUE_KEYS + PROFILE_KEYS
SECRET_KEYS = ("magento_token",)
BOOLEAN_KEYS = ("use_msi", "verify_tls")

# A pasted API address: https://shop.example.com/rest/default/V1 → https://shop.example.com.
REST_PATH = re.compile(r"/rest(/|$)", re.IGNORECASE)
# Magento's own rule for store codes (Magento\Store\Model\Validation\StoreCodeValidator).
STORE_CODE = re.compile(r"^[a-z][a-z0-9_]*$", re.IGNORECASE)
# Letters, digits and dashes only: WSGI servers drop request headers with underscores, so a
# header named X_Secret would never reach the receiver.
HEADER_NAME = re.compile(r"^[A-Za-z0-9-]+$")
TEXT_MAX_LENGTH = {"store_code": 64, "source_code": 64, "magento_url": 500}
TEXT_DEFAULT_MAX_LENGTH = 100


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
