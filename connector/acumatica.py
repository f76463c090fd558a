"""Acumatica contract-based REST client: sign-in, reads, OData inquiries, customization.

Only `requests` and the standard library (and `redis`, imported by `RedisSlots` alone): a test
can use this module with nothing but a URL. Every call answers with plain data, or raises an
`AcumaticaError` subclass whose class says what the answer means (DESIGN.md sections 5 and 9):

    AcumaticaConfigError       the settings are wrong: trips the outage guard, no attempt used
      AcumaticaAuthError         user name / password refused, session refused, missing rights
      AcumaticaUnknownTenant     the tenant is not one of the instance's
      AcumaticaEndpointNotFound  no such web-service endpoint / version (404 on /entity/…)
      AcumaticaInquiryNotFound   no such generic inquiry exposed through OData
      AcumaticaNotAnInstance     a web page, a redirect, no JSON: the URL is not Acumatica
      AcumaticaOAuthError        the token endpoint refused the client, the code or the token
    AcumaticaLoginLimit        all API-user seats are taken: wait, never sign in again at once
    AcumaticaRetryableError    try again later
      AcumaticaConnectionError, AcumaticaTimeout, AcumaticaServerError, AcumaticaBusy
    AcumaticaDataError         Acumatica refused the request's data (400/422)
    AcumaticaCustomizationError  the Customization API reported errors (import, publish)

`classify_response` and `classify_transport_error` are the one place that maps an answer (or
a failure to get one) to an error. Acumatica's own texts are the constants below, so that a
real trace can replace them.

Sessions: `with client.session() as api:` signs in once (cookie) or makes sure of a token
(OAuth 2.0), and signs out when the block ends, also on exceptions: each open cookie session
holds one of the license's few API-user seats until a 10-minute idle timeout. One session per
operation, never per record. Every HTTP request goes through the client's `slots` (the
connector's concurrency level, shared by all workers): see `RedisSlots` and `FileLockSlots`.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import random
import re
import socket
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, Protocol
from urllib.parse import quote, urlencode, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

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

# --- Acumatica's own texts (one place; replace them from a real trace if they change) ------

# PX.Data's PXException text when a sign-in finds every API-user seat of the license taken.
# Acumatica's documentation lists HTTP 429 for it; instances answer 500 with this text in
# `exceptionMessage` too (the official C# client looks for the text in any error answer).
LOGIN_LIMIT_TEXT = "API Login Limit"
# The sign-in's answer to a wrong user name or password (HTTP 500, PX.Data.PXException).
INVALID_CREDENTIALS_MESSAGE = "Invalid credentials. Please try again."
INVALID_CREDENTIALS_TEXT = "invalid credentials"
# PX.Data.PXUndefinedCompanyException: the tenant in the sign-in is not one of the instance's.
UNDEFINED_COMPANY_EXCEPTION = "PX.Data.PXUndefinedCompanyException"
UNDEFINED_COMPANY_MESSAGE = "A proper company ID cannot be determined for the request."
# ASP.NET Web API's HttpError: the outer message of an unhandled exception, and routing's 404.
GENERIC_ERROR_MESSAGE = "An error has occurred."
NO_RESOURCE_MESSAGE = "No HTTP resource was found that matches the request URI '%s'."
# The Customization API's getPublished log when nothing is published (no `projects` key then).
NO_PUBLISHED_PROJECTS_MESSAGE = "The system does not contain published projects"
LOG_TYPE_ERROR = "error"

# --- our own sentences ---------------------------------------------------------------------

LOGIN_LIMIT_ADVICE = (
    "Acumatica refused the sign-in because every API-user seat of its license is in use "
    f"({LOGIN_LIMIT_TEXT}). Wait up to 10 minutes for an idle session to expire, or sign out "
    "another integration that holds a seat. The license's number of API users is shown on "
    "the License Monitoring Console (SM604000). The connector does not sign in again at once."
)
INSTANCE_URL_HINT = (
    "Check the instance URL: it is the address you sign in at (e.g. "
    "https://mycompany.acumatica.com or https://host/AcumaticaERP), without /entity or /Main."
)
CUSTOMIZER_HINT = (
    "The Customization API needs a cookie sign-in (user name and password) of a user with "
    "the Customizer role."
)

AUTH_COOKIE = "cookie"
AUTH_OAUTH2 = "oauth2"
AUTH_TYPES = (AUTH_COOKIE, AUTH_OAUTH2)
DEFAULT_ENDPOINT = "Default"
DEFAULT_VERSION = "24.200.001"
DEFAULT_SCOPES = "openid api offline_access"
DEFAULT_TIMEOUT = 30.0
DEFAULT_SLOT_TIMEOUT = 120.0
DEFAULT_POOL_SIZE = 10
DEFAULT_PAGE_SIZE = 500
# Refresh an access token this long before it expires, so that no request carries a token
# that runs out on the way.
TOKEN_REFRESH_MARGIN_SECONDS = 60.0
# Acumatica frees an idle API session's seat after this long.
SESSION_IDLE_TIMEOUT_SECONDS = 600
DEFAULT_PUBLISH_POLL_SECONDS = 5.0
DEFAULT_PUBLISH_TIMEOUT_SECONDS = 1800.0
USER_AGENT = "acumatica-magento-connector"
# .NET ticks (100 ns since 0001-01-01) at the Unix epoch: push notifications' TimeStamp.
TICKS_AT_UNIX_EPOCH = 621355968000000000
TICKS_PER_SECOND = 10_000_000

# What a call is, for the one place that gives answers their meaning.
KIND_LOGIN = "login"
KIND_LOGOUT = "logout"
KIND_ROOT = "root"  # GET /entity: the instance's version and endpoints
KIND_ENTITY = "entity"
KIND_ODATA = "odata"
KIND_TOKEN = "token"
KIND_CUSTOMIZATION = "customization"
# The calls that tell whether the URL is an Acumatica instance at all.
IDENTIFYING_KINDS = (KIND_LOGIN, KIND_ROOT, KIND_TOKEN)

_GUID = r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
CLIENT_ID_PATTERN = re.compile(rf"^{_GUID}@\S(?:.*\S)?$")
# Path parts that follow the instance in URLs people paste.
_INSTANCE_SUFFIX = re.compile(
    r"/(?:entity|identity|api/odata|odata|t/[^/]+/api|CustomizationApi|Main|Frames|Pages|"
    r"Soap|swagger)(?:/|$|\?)",
    re.IGNORECASE,
)


# --- settings and results ------------------------------------------------------------------


@dataclass
class AcumaticaSettings:
    """What the client needs to reach one Acumatica tenant (the Django side fills it)."""

    instance_url: str
    endpoint: str = DEFAULT_ENDPOINT
    version: str = DEFAULT_VERSION
    tenant: str = ""
    branch: str = ""
    auth: str = AUTH_COOKIE
    username: str = ""
    password: str = field(default="", repr=False)
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    scopes: str = DEFAULT_SCOPES
    timeout: float = DEFAULT_TIMEOUT
    verify_tls: bool = True


@dataclass
class OAuthTokens:
    access_token: str = field(repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    expires_at: datetime | None = None
    token_type: str = "Bearer"
    scope: str = ""


@dataclass
class PublishLogEntry:
    timestamp: str
    log_type: str
    message: str


@dataclass
class PublishStatus:
    is_completed: bool
    is_failed: bool
    log: list[PublishLogEntry] = field(default_factory=list)
    polls: int = 0


@dataclass
class ConnectionReport:
    instance_url: str
    build_version: str
    endpoints: list[tuple[str, str]]
    endpoint: str
    version: str
    tenant: str
    auth: str
    stock_item: dict[str, Any] | None = None
    instance_url_was_cut: bool = False
    duration_ms: float = 0.0

    def summary(self) -> str:
        by_name: dict[str, list[str]] = {}
        for name, version in self.endpoints:
            by_name.setdefault(name, []).append(version)
        listed = "; ".join(f"{name} {', '.join(versions)}" for name, versions in by_name.items())
        sign_in = "OAuth 2.0 token" if self.auth == AUTH_OAUTH2 else "cookie sign-in, signed out"
        tenant = f"tenant {self.tenant}, " if self.tenant else ""
        parts = []
        if self.instance_url_was_cut:
            parts.append(f"The instance URL was cut back to {self.instance_url}.")
        build = f" {self.build_version}" if self.build_version else ""
        parts.append(f"Connected to Acumatica{build} at {self.instance_url} ({tenant}{sign_in}).")
        parts.append(f"Endpoints and versions: {listed or 'none listed'}.")
        if self.stock_item:
            item_id = self.stock_item.get("InventoryID", "?")
            description = self.stock_item.get("Description")
            described = f" ({description})" if description else ""
            parts.append(
                f"Read stock item {item_id}{described} through {self.endpoint}/{self.version}."
            )
        else:
            parts.append(f"{self.endpoint}/{self.version} answered; it has no stock items yet.")
        return " ".join(parts)


# --- errors --------------------------------------------------------------------------------


class AcumaticaError(CallError):
    """An Acumatica call that did not succeed. `str(error)` is a sentence for an operator."""


class AcumaticaConfigError(AcumaticaError):
    """The settings are wrong (URL, credentials, tenant, endpoint): not the message's fault."""

    trips_outage_guard = True


class AcumaticaAuthError(AcumaticaConfigError):
    pass


class AcumaticaUnknownTenant(AcumaticaConfigError):
    pass


class AcumaticaEndpointNotFound(AcumaticaConfigError):
    def __init__(
        self, message: str, *, available: Sequence[tuple[str, str]] = (), **kwargs: Any
    ) -> None:
        super().__init__(message, **kwargs)
        self.available = list(available)


class AcumaticaInquiryNotFound(AcumaticaConfigError):
    pass


class AcumaticaNotAnInstance(AcumaticaConfigError):
    pass


class AcumaticaOAuthError(AcumaticaConfigError):
    def __init__(self, message: str, *, error_code: str = "", **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.error_code = error_code


class AcumaticaLoginLimit(AcumaticaError):
    """Every API-user seat is taken. Not retryable at once: seats free up within 10 minutes."""

    trips_outage_guard = True
    retry_after_seconds: ClassVar[int] = SESSION_IDLE_TIMEOUT_SECONDS


class AcumaticaRetryableError(AcumaticaError):
    retryable = True


class AcumaticaConnectionError(AcumaticaRetryableError):
    pass


class AcumaticaTimeout(AcumaticaRetryableError):
    pass


class AcumaticaServerError(AcumaticaRetryableError):
    pass


class AcumaticaBusy(AcumaticaRetryableError):
    """No request slot came free in time (the connector's concurrency level)."""


class AcumaticaDataError(AcumaticaError):
    """Acumatica refused the data of the request (400/422)."""


class AcumaticaCustomizationError(AcumaticaError):
    """The Customization API reported errors; `log` holds its entries."""

    def __init__(self, message: str, *, log: Sequence[PublishLogEntry] = (), **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.log = list(log)


# --- request slots (the connector's concurrency level) -------------------------------------


class Slots(Protocol):
    """A limit on requests in flight across every worker: `with slots.acquire(timeout): …`.

    `acquire` waits up to `timeout` seconds for a free slot and raises `AcumaticaBusy` when
    none came free.
    """

    def acquire(self, timeout: float) -> AbstractContextManager[object]: ...


class NoSlots:
    """No limit (tests, one-off commands)."""

    def acquire(self, timeout: float) -> AbstractContextManager[object]:
        return nullcontext()


def _busy(limit: int, timeout: float) -> AcumaticaBusy:
    return AcumaticaBusy(
        f"All {limit} Acumatica request slots (the concurrency level) stayed taken for "
        f"{timeout:g} s: other workers are using Acumatica. The call will be tried again; "
        "raise the concurrency level only if the license allows more concurrent API requests."
    )


class RedisSlots:
    """Slots in a Redis sorted set of holder → expiry, shared by every process and host.

    Acquiring runs one Lua script (atomic): drop the holders whose expiry passed, then take a
    slot if fewer than `limit` remain. A holder killed with SIGKILL never releases its slot;
    its entry expires after `expire_seconds`, so that slot comes back by itself. Make
    `expire_seconds` longer than the longest request (the client's timeout), or a slow
    request's slot is given away while it still runs. Times come from Redis (`TIME`), so the
    hosts' clocks do not matter.
    """

    ACQUIRE_SCRIPT = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now_ms + tonumber(ARGV[3]), ARGV[2])
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) * 2)
  return 1
end
return 0
"""

    def __init__(
        self,
        redis_url: str,
        key: str,
        limit: int,
        expire_seconds: float = DEFAULT_TIMEOUT * 2,
        poll_interval: float = 0.02,
    ) -> None:
        import redis  # only this class needs it

        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.key = key
        self.limit = int(limit)
        self.expire_ms = max(1, int(expire_seconds * 1000))
        self.poll_interval = poll_interval
        self._redis_error = redis.RedisError
        self._redis = redis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)
        self._acquire = self._redis.register_script(self.ACQUIRE_SCRIPT)

    def __repr__(self) -> str:
        return f"RedisSlots(key={self.key!r}, limit={self.limit})"

    def holders(self) -> int:
        """Slots taken now (expired holders not counted)."""
        seconds, microseconds = self._redis.time()
        return int(self._redis.zcount(self.key, seconds * 1000 + microseconds // 1000, "+inf"))

    def _try_take(self, holder: str) -> bool:
        try:
            return bool(self._acquire(keys=[self.key], args=[self.limit, holder, self.expire_ms]))
        except self._redis_error as error:
            raise AcumaticaBusy(
                f"The Acumatica request slots in Redis could not be reached ({error}); the call "
                "will be tried again."
            ) from None

    @contextmanager
    def acquire(self, timeout: float) -> Iterator[str]:
        holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex}"
        deadline = time.monotonic() + max(0.0, timeout)
        while not self._try_take(holder):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _busy(self.limit, timeout)
            time.sleep(min(remaining, self.poll_interval * random.uniform(0.5, 1.5)))
        try:
            yield holder
        finally:
            try:
                self._redis.zrem(self.key, holder)
            except self._redis_error:
                pass  # the entry expires by itself


class FileLockSlots:
    """Slots as lock files `slot-0.lock` … `slot-{limit-1}.lock` under `folder` (`flock`).

    For the embedded default (one host, no Redis). The kernel releases a lock when its holder
    dies, even by SIGKILL, so a killed holder frees its slot at once. Each acquisition opens
    its own file description, so threads of one process exclude each other too.
    """

    def __init__(self, folder: str | os.PathLike[str], limit: int, poll_interval: float = 0.02):
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.limit = int(limit)
        self.poll_interval = poll_interval

    def __repr__(self) -> str:
        return f"FileLockSlots(folder={str(self.folder)!r}, limit={self.limit})"

    def path(self, index: int) -> Path:
        return self.folder / f"slot-{index}.lock"

    def _try_take(self) -> int | None:
        start = random.randrange(self.limit)  # spread the callers over the files
        for offset in range(self.limit):
            path = self.path((start + offset) % self.limit)
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(descriptor)
                continue
            return descriptor
        return None

    @contextmanager
    def acquire(self, timeout: float) -> Iterator[int]:
        deadline = time.monotonic() + max(0.0, timeout)
        descriptor = self._try_take()
        while descriptor is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _busy(self.limit, timeout)
            time.sleep(min(remaining, self.poll_interval * random.uniform(0.5, 1.5)))
            descriptor = self._try_take()
        try:
            yield descriptor
        finally:
            fcntl.flock(descriptor, fcntl.LOCK_UN)
            os.close(descriptor)


# --- small helpers the Django side uses too -------------------------------------------------


def normalize_instance_url(url: str) -> tuple[str, bool]:
    """The instance's address, and whether a pasted API or page path was cut off.

    `https://x.acumatica.com/entity/Default/24.200.001/` → (`https://x.acumatica.com`, True);
    `https://host/AcumaticaERP/` → (`https://host/AcumaticaERP`, False): a trailing slash is
    only tidied. The query and fragment are dropped.
    """
    text = (url or "").strip()
    parts = urlsplit(text)
    if not parts.scheme or not parts.netloc:
        return text.rstrip("/"), False
    path = parts.path
    match = _INSTANCE_SUFFIX.search(path + ("" if path.endswith("/") else "/"))
    was_cut = False
    if match:
        path = path[: match.start()]
        was_cut = True
    return f"{parts.scheme}://{parts.netloc}{path.rstrip('/')}", was_cut


def valid_client_id(text: str) -> bool:
    """An OAuth client id as Acumatica's Connected Applications form shows it: `<GUID>@<Tenant>`."""
    return bool(CLIENT_ID_PATTERN.match((text or "").strip()))


def format_datetimeoffset(moment: datetime) -> str:
    """`2025-06-17T10:31:28.402+03:00`: milliseconds and the moment's own UTC offset."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("a datetimeoffset needs an aware datetime")
    offset = moment.utcoffset() or timedelta(0)
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    return (
        f"{moment.strftime('%Y-%m-%dT%H:%M:%S')}.{moment.microsecond // 1000:03d}"
        f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"
    )


def instance_zone(time_zone: str) -> ZoneInfo:
    try:
        return ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"'{time_zone}' is not an IANA time zone name (e.g. America/New_York)."
        ) from None


def modified_since_filter(
    field: str,
    moment: datetime,
    time_zone: str,
    offset_seconds: int = 0,
    *,
    odata: bool = False,
) -> str:
    """A `$filter` for rows changed after `moment`, as Acumatica reads it.

    1. `moment` must be aware (a watermark kept in UTC); the time offset is subtracted from
       it as an instant, so a DST change in between costs nothing.
    2. The result is written in the instance's IANA time zone with that zone's offset at
       the time: `LastModifiedDateTime gt datetimeoffset'2025-06-17T10:31:28.402+03:00'`
       (contract-based REST) or `… gt 2025-06-17T10:31:28.402+03:00` (`odata=True`).
    Pass it as a query parameter: the client encodes `+` as %2B (a raw `+` reads as a space).
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("modified_since_filter needs an aware datetime (a UTC watermark)")
    local = (moment - timedelta(seconds=int(offset_seconds))).astimezone(instance_zone(time_zone))
    literal = format_datetimeoffset(local)
    return f"{field} gt {literal}" if odata else f"{field} gt datetimeoffset'{literal}'"


def parse_acumatica_datetime(text: str, time_zone: str = "UTC") -> datetime:
    """An Acumatica date and time as an aware datetime.

    Contract-based answers carry an offset; push notifications' values carry none and are in
    the instance's time zone (`2024-05-05T15:16:23.1`).
    """
    value = datetime.fromisoformat(text.strip())
    if value.tzinfo is None:
        value = value.replace(tzinfo=instance_zone(time_zone))
    return value


def ticks_to_datetime(ticks: int) -> datetime:
    """A push notification's `TimeStamp` (.NET ticks, UTC) as an aware datetime."""
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(
        microseconds=(int(ticks) - TICKS_AT_UNIX_EPOCH) // 10
    )


def datetime_to_ticks(moment: datetime) -> int:
    delta = moment.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return TICKS_AT_UNIX_EPOCH + (delta // timedelta(microseconds=1)) * 10


def unwrap(value: Any) -> Any:
    """Acumatica's wrapped values made plain: `{"InventoryID": {"value": "X"}}` → `"X"`.

    Details (lists of records) are unwrapped too; `_links` go.
    """
    if isinstance(value, Mapping):
        if "value" in value and set(value) <= {"value", "error"}:
            return value["value"]
        return {key: unwrap(item) for key, item in value.items() if key != "_links"}
    if isinstance(value, list):
        return [unwrap(item) for item in value]
    return value


# --- Acumatica's answers -------------------------------------------------------------------





def readable_message(body: Any) -> str:
    """One sentence from an Acumatica error body.

    ASP.NET's `{"message": "An error has occurred.", "exceptionMessage": …}` gives the inner
    text; OAuth's `{"error", "error_description"}` and OData's `{"error": {"message"}}` theirs;
    a 422 record lists its fields' `error` texts.
    """
    if isinstance(body, Mapping):
        error = body.get("error")
        if isinstance(error, Mapping) and error.get("message"):
            return str(error["message"])
        for key in ("exceptionMessage", "ExceptionMessage", "error_description"):
            if body.get(key):
                return str(body[key])
        if isinstance(error, str) and error:
            return error
        for key in ("message", "Message"):
            if body.get(key):
                return str(body[key])
        field_errors = [
            f"{name}: {value['error']}"
            for name, value in body.items()
            if isinstance(value, Mapping) and value.get("error")
        ]
        if field_errors:
            return "; ".join(field_errors)
    if body in (None, ""):
        return ""
    return excerpt(json.dumps(body))


def classify_response(
    status_code: int,
    body: str,
    *,
    kind: str,
    content_type: str = "",
    location: str = "",
    endpoint: str = "",
    duration_ms: float = 0.0,
    secrets: Sequence[str] = (),
    username: str = "",
    tenant: str = "",
) -> AcumaticaError | None:
    """Map one HTTP answer to the error it means, or None for a success.

    The one place where Acumatica's answers get their meaning:
    1. The login-limit text in any error answer, or a 429 to a sign-in or token request: the
       API-user seats are taken (never sign in again at once).
    2. 2xx: JSON, or no body where none is due (sign-in, sign-out), is success. A web page
       instead means a wrong URL on the identifying calls, a passing fault otherwise.
    3. 3xx: a redirect (usually to a sign-in page): not the instance's API.
    4. The token endpoint's OAuth errors; then 401/403: credentials, session or rights.
    5. 404: a missing endpoint/version, a missing inquiry, or no Acumatica at all.
    6. A refused sign-in names wrong credentials or an unknown tenant.
    7. 408, 429 (queue of more than 20 requests) and 5xx: retried. Other 4xx: the data.
    """
    kwargs: dict[str, Any] = {
        "status_code": status_code,
        "duration_ms": duration_ms,
        "endpoint": endpoint,
    }
    body = redact(body, secrets) if body else body  # before an excerpt cuts a secret in half
    is_html = "html" in content_type.lower()
    is_json, data = parse_json(body) if body and not is_html else (False, None)
    detail = redact(readable_message(data) if is_json else excerpt(body or ""), secrets)
    answer = f"HTTP {status_code}: {detail}" if detail else f"HTTP {status_code}"
    exception_type = str(data.get("exceptionType", "")) if isinstance(data, Mapping) else ""
    lowered = (body or "").lower()

    if status_code >= 400 and LOGIN_LIMIT_TEXT.lower() in lowered:
        return AcumaticaLoginLimit(f"{LOGIN_LIMIT_ADVICE} ({answer})", **kwargs)
    if status_code == 429 and kind in (KIND_LOGIN, KIND_TOKEN):
        return AcumaticaLoginLimit(f"{LOGIN_LIMIT_ADVICE} ({answer})", **kwargs)

    if 200 <= status_code < 300:
        if is_json or (not body.strip() and kind in (KIND_LOGIN, KIND_LOGOUT)):
            return None
        if not body.strip() and kind == KIND_CUSTOMIZATION:
            return None
        message = f"Acumatica answered {endpoint} with a web page instead of JSON ({answer})."
        if kind in IDENTIFYING_KINDS:
            return AcumaticaNotAnInstance(
                f"This address does not look like an Acumatica instance: {message} "
                f"{INSTANCE_URL_HINT}",
                **kwargs,
            )
        return AcumaticaRetryableError(message, **kwargs)

    if 300 <= status_code < 400:
        target = redact(location, secrets) or "another page"
        return AcumaticaNotAnInstance(
            f"{endpoint} was redirected to {target} (HTTP {status_code}), usually a sign-in "
            f"page, instead of answering like Acumatica's API. {INSTANCE_URL_HINT}",
            **kwargs,
        )

    if kind == KIND_TOKEN and 400 <= status_code < 500:
        return _oauth_error(data if is_json else None, answer, kwargs, is_json=is_json)

    if not is_json and 400 <= status_code < 500 and kind in IDENTIFYING_KINDS:
        return AcumaticaNotAnInstance(
            f"This address does not look like an Acumatica instance: {endpoint} got a web "
            f"page instead of Acumatica's JSON ({answer}). {INSTANCE_URL_HINT}",
            **kwargs,
        )

    if kind == KIND_LOGIN and (
        UNDEFINED_COMPANY_EXCEPTION in exception_type
        or UNDEFINED_COMPANY_MESSAGE.lower() in lowered
        or "tenant" in detail.lower()
    ):
        return AcumaticaUnknownTenant(
            f"Acumatica does not know the tenant '{tenant}' ({answer}). Use the tenant's "
            "Login Name from the Tenants form (SM203520); leave it empty only if the instance "
            "has a single tenant.",
            **kwargs,
        )
    if kind == KIND_LOGIN and (status_code == 401 or INVALID_CREDENTIALS_TEXT in lowered):
        return AcumaticaAuthError(
            f"Acumatica refused the sign-in of user '{username}': wrong user name or password "
            f"({answer}). Check them on the Acumatica Connection screen; the user must be "
            "allowed to use the web services API.",
            **kwargs,
        )

    if status_code == 401:
        if kind == KIND_ODATA:
            message = (
                f"Acumatica refused the credentials for the OData inquiry ({answer}). Check "
                "the user name and password (or the OAuth authorization)."
            )
        elif kind == KIND_CUSTOMIZATION:
            message = f"Acumatica refused the Customization API call ({answer}). {CUSTOMIZER_HINT}"
        else:
            message = (
                f"Acumatica refused the session for {endpoint} ({answer}) even after signing "
                "in again. Check the credentials and that the user may use the web services API."
            )
        return AcumaticaAuthError(message, **kwargs)
    if status_code == 403:
        hint = (
            CUSTOMIZER_HINT
            if kind == KIND_CUSTOMIZATION
            else ("The user lacks the rights for it: check its roles in Acumatica.")
        )
        return AcumaticaAuthError(f"Acumatica forbade {endpoint} ({answer}). {hint}", **kwargs)

    if status_code in (404, 405):
        if kind == KIND_ENTITY:
            return AcumaticaEndpointNotFound(
                f"Acumatica has no such web-service endpoint or entity for {endpoint} "
                f"({answer}). Choose an endpoint name and version that the instance offers "
                "(Test Connection lists them).",
                **kwargs,
            )
        if kind == KIND_ODATA:
            return AcumaticaInquiryNotFound(
                f"Acumatica has no generic inquiry exposed through OData for {endpoint} "
                f"({answer}). Run Initialize to publish the connector's inquiries, and check "
                "the tenant name in the URL.",
                **kwargs,
            )
        if kind == KIND_CUSTOMIZATION:
            return AcumaticaConfigError(
                f"Acumatica has no Customization API at {endpoint} ({answer}). It needs "
                "Acumatica 2019 R2 or later; check the instance URL.",
                **kwargs,
            )
        return AcumaticaNotAnInstance(
            f"{endpoint} is not there ({answer}). {INSTANCE_URL_HINT}", **kwargs
        )

    if status_code in (408, 429) or status_code >= 500:
        if status_code == 429:
            message = (
                f"Acumatica declined {endpoint} ({answer}): more than 20 requests were "
                "waiting for its license's concurrent-request slots, or the per-minute limit "
                "was reached. Lower the concurrency level if this repeats."
            )
        elif not is_json:
            message = f"The web server in front of Acumatica failed on {endpoint} ({answer})."
        else:
            message = f"Acumatica failed on {endpoint} ({answer})."
        return AcumaticaServerError(message, **kwargs)

    return AcumaticaDataError(f"Acumatica refused the request {endpoint} ({answer}).", **kwargs)


def _oauth_error(
    data: Any, answer: str, kwargs: dict[str, Any], *, is_json: bool
) -> AcumaticaError:
    code = str(data.get("error", "")) if isinstance(data, Mapping) else ""
    if not is_json:
        return AcumaticaNotAnInstance(
            f"The OAuth token endpoint answered with a web page ({answer}). {INSTANCE_URL_HINT}",
            **kwargs,
        )
    if code == "invalid_client":
        message = (
            f"Acumatica refused the OAuth client ({answer}). Check the client id (format "
            "<GUID>@<Tenant>) and the shared secret on the Connected Applications form "
            "(SM303010)."
        )
    elif code == "invalid_grant":
        message = (
            f"Acumatica refused the authorization ({answer}): the code was used or expired, "
            "the refresh token was replaced by a newer one or revoked, or the user name or "
            "password is wrong. Authorize the connector again on the Acumatica Connection "
            "screen."
        )
    elif code in ("unauthorized_client", "unsupported_grant_type"):
        message = (
            f"The OAuth client may not use this flow ({answer}). Allow the flow on the "
            "Connected Applications form (SM303010)."
        )
    elif code == "invalid_scope":
        message = f"Acumatica refused the OAuth scopes ({answer}). Use: {DEFAULT_SCOPES}."
    else:
        message = f"Acumatica's token endpoint refused the request ({answer})."
    return AcumaticaOAuthError(message, error_code=code, **kwargs)



def classify_transport_error(
    exc: BaseException,
    *,
    url: str,
    timeout: float,
    endpoint: str = "",
    duration_ms: float = 0.0,
    secrets: Sequence[str] = (),
) -> AcumaticaError:
    """Map a failure to get any answer (DNS, refused, TLS, timeout, dropped) to an error."""
    kwargs: dict[str, Any] = {"status_code": None, "duration_ms": duration_ms, "endpoint": endpoint}
    failure = describe_transport_failure(
        exc, system="Acumatica", url_name="Acumatica instance URL", url=url, timeout=timeout,
        endpoint=endpoint, secrets=secrets,
    )
    if failure.kind == http_failures.INVALID_URL:
        return AcumaticaConfigError(
            f"The Acumatica instance URL '{redact(url, secrets)}' is not a valid address. "
            "Use the address with its scheme, e.g. https://mycompany.acumatica.com.",
            **kwargs,
        )
    if failure.kind in (http_failures.CONNECT_TIMEOUT, http_failures.READ_TIMEOUT):
        return AcumaticaTimeout(failure.sentence, **kwargs)
    return AcumaticaConnectionError(failure.sentence, **kwargs)


def _log_entries(data: Any) -> list[PublishLogEntry]:
    """The Customization API's log: `{"log": [{timestamp, logType, message}]}` or one entry."""
    raw: Any = data.get("log") if isinstance(data, Mapping) else None
    if raw is None and isinstance(data, Mapping) and "logType" in data:
        raw = [data]
    return [
        PublishLogEntry(
            timestamp=str(entry.get("timestamp", "")),
            log_type=str(entry.get("logType", "")),
            message=str(entry.get("message", "")),
        )
        for entry in (raw if isinstance(raw, list) else [])
        if isinstance(entry, Mapping)
    ]


def _errors_in(log: Sequence[PublishLogEntry]) -> list[str]:
    return [entry.message for entry in log if entry.log_type.lower() == LOG_TYPE_ERROR]


# --- the client ----------------------------------------------------------------------------


TokensCallback = Callable[[str, str | None, datetime], None]


class AcumaticaClient:
    """One Acumatica tenant's API, reached with the settings given.

    Keep one client per worker thread. Sessions are opened with `session()` (one per
    operation); the client-level read methods open one around a single call. `slots` caps
    the requests in flight (every request takes one); `seats`, if given, caps the cookie
    sessions open at once (each holds one from sign-in to sign-out; a `RedisSlots` used for
    seats needs `expire_seconds` longer than the longest session). OAuth tokens
    live on the client: `on_tokens(access_token, refresh_token, expires_at)` is called after
    every token answer, so the caller can store the rotated refresh token (encrypted).
    Redirects are not followed (that is how a wrong URL usually shows) and nothing is
    retried here except one sign-in (or token refresh) after a 401: retrying is the
    processor's decision.
    """

    def __init__(
        self,
        settings: AcumaticaSettings,
        *,
        slots: Slots | None = None,
        slot_timeout: float = DEFAULT_SLOT_TIMEOUT,
        seats: Slots | None = None,
        seat_timeout: float = DEFAULT_SLOT_TIMEOUT,
        on_tokens: TokensCallback | None = None,
        tokens: OAuthTokens | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        pool_size: int = DEFAULT_POOL_SIZE,
    ) -> None:
        if settings.auth not in AUTH_TYPES:
            raise ValueError(f"auth must be one of {', '.join(AUTH_TYPES)}")
        self.settings = settings
        self.instance_url, self.instance_url_was_cut = normalize_instance_url(settings.instance_url)
        self.timeout = float(settings.timeout)
        self.slots: Slots = slots if slots is not None else NoSlots()
        self.slot_timeout = float(slot_timeout)
        self.seats: Slots = seats if seats is not None else NoSlots()
        self.seat_timeout = float(seat_timeout)
        self.on_tokens = on_tokens
        self.tokens = tokens
        self.clock = clock
        self.sleep = sleep
        self.pool_size = pool_size
        self._token_lock = threading.RLock()
        self._http = self._new_http()  # token, OData: nothing kept between calls
        if not settings.verify_tls:
            # The operator turned verification off on purpose: a warning per call would only
            # bury the log.
            warnings.filterwarnings("ignore", message="Unverified HTTPS request")

    def __repr__(self) -> str:
        return (
            f"AcumaticaClient(instance_url={self.instance_url!r}, "
            f"endpoint={self.settings.endpoint!r}, version={self.settings.version!r}, "
            f"auth={self.settings.auth!r})"
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AcumaticaClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def secrets(self) -> list[str]:
        values = [self.settings.password, self.settings.client_secret]
        if self.tokens is not None:
            values += [self.tokens.access_token, self.tokens.refresh_token or ""]
        return [value for value in values if value]

    def entity_path(self, entity: str = "") -> str:
        settings = self.settings
        base = f"/entity/{quote(settings.endpoint, safe='')}/{quote(settings.version, safe='')}"
        return f"{base}/{quote(entity, safe='')}" if entity else base

    # -- sessions ---------------------------------------------------------------------------

    @contextmanager
    def session(self) -> Iterator[AcumaticaSession]:
        """One sign-in for one operation; signed out when the block ends, whatever happens."""
        with self._session(cookie=self.settings.auth == AUTH_COOKIE) as api:
            yield api

    @contextmanager
    def customization_session(self) -> Iterator[AcumaticaSession]:
        """A cookie sign-in whatever the auth type: the Customization API takes no tokens."""
        if not (self.settings.username and self.settings.password):
            raise AcumaticaConfigError(CUSTOMIZER_HINT)
        with self._session(cookie=True) as api:
            yield api

    @contextmanager
    def _session(self, *, cookie: bool) -> Iterator[AcumaticaSession]:
        # A cookie session holds one of the license's API-user seats until it signs out:
        # `seats` caps the connector's own sessions so its workers never meet the limit.
        with self.seats.acquire(self.seat_timeout) if cookie else nullcontext():
            api = AcumaticaSession(self, cookie=cookie)
            api.open()
            try:
                yield api
            finally:
                api.close()

    # -- one-call conveniences (each one session) --------------------------------------------

    def test_connection(self) -> ConnectionReport:
        """Sign in, list the endpoints and versions, read one StockItem, sign out."""
        started = time.perf_counter()
        with self.session() as api:
            root = api.root()
            endpoints = _endpoint_list(root)
            try:
                item = api.first_stock_item()
            except AcumaticaEndpointNotFound as error:
                offered = ", ".join(f"{name} {version}" for name, version in endpoints)
                error.message = (
                    f"Acumatica has no endpoint {self.settings.endpoint} version "
                    f"{self.settings.version} (HTTP {error.status_code}). The instance offers: "
                    f"{offered or 'none listed'}. Choose one of them on the Acumatica "
                    "Connection screen."
                )
                error.available = endpoints
                raise
        version = root.get("version") if isinstance(root, Mapping) else None
        build = (
            str(version.get("acumaticaBuildVersion", "")) if isinstance(version, Mapping) else ""
        )
        return ConnectionReport(
            instance_url=self.instance_url,
            build_version=build,
            endpoints=endpoints,
            endpoint=self.settings.endpoint,
            version=self.settings.version,
            tenant=self.settings.tenant,
            auth=self.settings.auth,
            stock_item=unwrap(item) if item else None,
            instance_url_was_cut=self.instance_url_was_cut,
            duration_ms=(time.perf_counter() - started) * 1000,
        )

    def list_endpoints(self) -> list[tuple[str, str]]:
        with self.session() as api:
            return api.list_endpoints()

    def get_entities(self, entity: str, **query: Any) -> list[dict[str, Any]]:
        with self.session() as api:
            return api.get_entities(entity, **query)

    def iterate_pages(
        self, entity: str, page_size: int = DEFAULT_PAGE_SIZE, **query: Any
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages of `entity` in one session (held open until the iteration ends)."""
        with self.session() as api:
            yield from api.iterate_pages(entity, page_size, **query)

    def first_stock_item(self) -> dict[str, Any] | None:
        with self.session() as api:
            return api.first_stock_item()

    def odata_gi(self, name: str, **query: Any) -> list[dict[str, Any]]:
        """Rows of a generic inquiry over OData (basic auth or a bearer token: no session)."""
        return self._odata(name, bearer=self.settings.auth == AUTH_OAUTH2, **query)

    def iterate_gi_pages(
        self, name: str, page_size: int = DEFAULT_PAGE_SIZE, **query: Any
    ) -> Iterator[list[dict[str, Any]]]:
        skip = 0
        while True:
            page = self.odata_gi(name, top=page_size, skip=skip, **query)
            if page:
                yield page
            if len(page) < page_size:
                return
            skip += page_size

    def import_project(self, *args: Any, **kwargs: Any) -> list[PublishLogEntry]:
        with self.customization_session() as api:
            return api.import_project(*args, **kwargs)

    def remove_project(self, name: str) -> list[PublishLogEntry]:
        with self.customization_session() as api:
            return api.remove_project(name)

    def publish(self, *args: Any, **kwargs: Any) -> PublishStatus:
        with self.customization_session() as api:
            return api.publish(*args, **kwargs)

    def get_published(self) -> list[str]:
        with self.customization_session() as api:
            return api.get_published()

    # -- OAuth 2.0 ---------------------------------------------------------------------------

    def authorization_url(self, redirect_uri: str, state: str) -> str:
        """Where to send the browser for the authorization-code flow."""
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.settings.client_id,
                "redirect_uri": redirect_uri,
                "scope": self.settings.scopes,
                "state": state,
            },
            quote_via=quote,
        )
        return f"{self.instance_url}/identity/connect/authorize?{query}"

    def exchange_code(self, code: str, redirect_uri: str) -> OAuthTokens:
        """The authorization code (from the callback) traded for tokens."""
        return self._token_request(
            {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        )

    def password_grant(self) -> OAuthTokens:
        """Resource-owner password flow with the settings' user name and password."""
        return self._token_request(
            {
                "grant_type": "password",
                "username": self.settings.username,
                "password": self.settings.password,
                "scope": self.settings.scopes,
            }
        )

    def refresh(self) -> OAuthTokens:
        """A new access token; the answer's refresh token replaces the old one (rotation)."""
        with self._token_lock:
            refresh_token = self.tokens.refresh_token if self.tokens else None
            if not refresh_token:
                raise AcumaticaOAuthError(
                    "There is no refresh token to renew the authorization: authorize the "
                    "connector on the Acumatica Connection screen (the scopes need "
                    "offline_access)."
                )
            return self._token_request(
                {"grant_type": "refresh_token", "refresh_token": refresh_token}
            )

    def ensure_token(self, *, force: bool = False) -> OAuthTokens:
        """A usable access token: refreshed `TOKEN_REFRESH_MARGIN_SECONDS` before it expires.

        Without a refresh token the password flow is used when a user name and password are
        set; otherwise the connector must be authorized first.
        """
        with self._token_lock:
            tokens = self.tokens
            if not force and tokens is not None and tokens.access_token:
                expires_at = tokens.expires_at
                if expires_at is None or (
                    expires_at.timestamp() - self.clock() > TOKEN_REFRESH_MARGIN_SECONDS
                ):
                    return tokens
            if tokens is not None and tokens.refresh_token:
                return self.refresh()
            if self.settings.username and self.settings.password:
                return self.password_grant()
            raise AcumaticaOAuthError(
                "The connector has no OAuth token yet: authorize it on the Acumatica "
                "Connection screen."
            )

    def _token_request(self, form: dict[str, str]) -> OAuthTokens:
        form = {**form, "client_id": self.settings.client_id}
        if self.settings.client_secret:
            form["client_secret"] = self.settings.client_secret
        response, _ = self._send(
            self._http,
            "POST",
            "/identity/connect/token",
            kind=KIND_TOKEN,
            data=urlencode(form).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        data = response.json()
        expires_in = float(data.get("expires_in") or 3600)
        previous = self.tokens.refresh_token if self.tokens else None
        tokens = OAuthTokens(
            access_token=str(data.get("access_token", "")),
            refresh_token=str(data["refresh_token"]) if data.get("refresh_token") else previous,
            expires_at=datetime.fromtimestamp(self.clock() + expires_in, UTC),
            token_type=str(data.get("token_type") or "Bearer"),
            scope=str(data.get("scope", "")),
        )
        if not tokens.access_token:
            raise AcumaticaOAuthError("Acumatica's token answer carried no access token.")
        with self._token_lock:
            self.tokens = tokens
        if self.on_tokens is not None:
            self.on_tokens(tokens.access_token, tokens.refresh_token, tokens.expires_at)
        return tokens

    # -- OData -------------------------------------------------------------------------------

    def _odata(
        self,
        name: str,
        *,
        bearer: bool,
        filter: str | None = None,
        orderby: str | None = None,
        select: str | None = None,
        top: int | None = None,
        skip: int | None = None,
    ) -> list[dict[str, Any]]:
        tenant = self.settings.tenant
        if not tenant:
            raise AcumaticaConfigError(
                "OData inquiries are read under /t/<tenant>/: set the tenant's login name."
            )
        path = f"/t/{quote(tenant, safe='')}/api/odata/gi/{quote(name, safe='')}"
        params = {"$filter": filter, "$orderby": orderby, "$select": select, "$top": top}
        params["$skip"] = skip
        for attempt in (1, 2):
            headers = {"Accept": "application/json"}
            auth = None
            if bearer:
                headers["Authorization"] = f"Bearer {self.ensure_token().access_token}"
            else:
                auth = (self.settings.username, self.settings.password)
            response, _ = self._send(
                self._http,
                "GET",
                path + _query(params),
                kind=KIND_ODATA,
                headers=headers,
                auth=auth,
                raise_for=None,
            )
            self._http.cookies.clear()  # basic auth: nothing is kept between calls
            if response.status_code == 401 and bearer and attempt == 1:
                self.ensure_token(force=True)
                continue
            self._raise_for(response, KIND_ODATA, f"GET {path}")
            data = response.json()
            rows = data.get("value", []) if isinstance(data, Mapping) else data
            return [dict(row) for row in rows or []]
        raise AssertionError("unreachable")  # pragma: no cover

    # -- plumbing ---------------------------------------------------------------------------

    def _new_http(self) -> requests.Session:
        http = requests.Session()
        http.headers.update({"Accept": "application/json", "User-Agent": USER_AGENT})
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=self.pool_size, max_retries=0)
        http.mount("http://", adapter)
        http.mount("https://", adapter)
        return http

    def _send(
        self,
        http: requests.Session,
        method: str,
        path: str,
        *,
        kind: str,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        raise_for: str | None = "",
    ) -> tuple[requests.Response, float]:
        """One HTTP request through a slot; raises the classified error unless told not to.

        `raise_for=""` classifies with `kind`; `None` returns any answer to the caller (who
        handles a 401 and then calls `_raise_for`).
        """
        url = self.instance_url + path
        endpoint = f"{method} {path.split('?', 1)[0]}"
        with self.slots.acquire(self.slot_timeout):
            started = time.perf_counter()
            try:
                # `verify` on every call: requests lets REQUESTS_CA_BUNDLE override the session's.
                response = http.request(
                    method,
                    url,
                    data=data,
                    headers=dict(headers or {}),
                    auth=auth,
                    timeout=self.timeout,
                    verify=self.settings.verify_tls,
                    allow_redirects=False,
                )
                response.content  # read the body while the slot is held  # noqa: B018
            except requests.RequestException as exc:
                raise classify_transport_error(
                    exc,
                    url=url,
                    timeout=self.timeout,
                    endpoint=endpoint,
                    duration_ms=(time.perf_counter() - started) * 1000,
                    secrets=self.secrets,
                ) from None
        duration_ms = (time.perf_counter() - started) * 1000
        response.elapsed_ms = duration_ms  # type: ignore[attr-defined]
        if raise_for is not None:
            self._raise_for(response, raise_for or kind, endpoint)
        return response, duration_ms

    def _raise_for(self, response: requests.Response, kind: str, endpoint: str) -> None:
        error = classify_response(
            response.status_code,
            response.text,
            kind=kind,
            content_type=response.headers.get("Content-Type", ""),
            location=response.headers.get("Location", ""),
            endpoint=endpoint,
            duration_ms=getattr(response, "elapsed_ms", 0.0),
            secrets=self.secrets,
            username=self.settings.username,
            tenant=self.settings.tenant,
        )
        if error is not None:
            raise error


def _query(params: Mapping[str, Any]) -> str:
    """`?$filter=…`: spaces as %20 and `+` as %2B (a raw `+` would read as a space)."""
    present = {key: str(value) for key, value in params.items() if value not in (None, "")}
    if not present:
        return ""
    return "?" + urlencode(present, quote_via=quote, safe="$',:()/")


def _endpoint_list(root: Any) -> list[tuple[str, str]]:
    endpoints = root.get("endpoints") if isinstance(root, Mapping) else None
    return [
        (str(item.get("name", "")), str(item.get("version", "")))
        for item in endpoints or []
        if isinstance(item, Mapping)
    ]


class AcumaticaSession:
    """One signed-in session (cookie jar) or one bearer token holder; see `client.session()`."""

    def __init__(self, client: AcumaticaClient, *, cookie: bool) -> None:
        self.client = client
        self.cookie = cookie
        self.signed_in = False
        self.logins = 0
        self.logout_error: AcumaticaError | None = None
        self._http = client._new_http()

    def __repr__(self) -> str:
        auth = AUTH_COOKIE if self.cookie else AUTH_OAUTH2
        return f"AcumaticaSession(instance_url={self.client.instance_url!r}, auth={auth!r})"

    # -- sign-in ----------------------------------------------------------------------------

    def open(self) -> None:
        try:
            if self.cookie:
                self.login()
            else:
                self.client.ensure_token()
        except BaseException:
            self._http.close()
            raise

    def close(self) -> None:
        """Sign out (cookie sessions); never raises, so the block's own error stays visible."""
        try:
            if self.cookie and self.signed_in:
                self.logout()
        except AcumaticaError as error:
            # The seat frees itself after Acumatica's idle timeout; nothing more to do here.
            self.logout_error = error
        finally:
            self._http.close()

    def login(self) -> None:
        """POST /entity/auth/login; the answer's cookies (the whole jar) carry the session."""
        settings = self.client.settings
        credentials = {"name": settings.username, "password": settings.password}
        if settings.tenant:
            credentials["tenant"] = settings.tenant
        if settings.branch:
            credentials["branch"] = settings.branch
        self._http.cookies.clear()
        self.client._send(
            self._http,
            "POST",
            "/entity/auth/login",
            kind=KIND_LOGIN,
            data=json.dumps(credentials).encode(),
            headers={"Content-Type": "application/json"},
        )
        self.signed_in = True
        self.logins += 1

    def logout(self) -> None:
        self.signed_in = False
        try:
            self.client._send(self._http, "POST", "/entity/auth/logout", kind=KIND_LOGOUT)
        finally:
            self._http.cookies.clear()

    # -- the contract-based API ----------------------------------------------------------------

    def root(self) -> dict[str, Any]:
        """GET /entity: `{"version": {"acumaticaBuildVersion", …}, "endpoints": [{"name", …}]}`."""
        data = self._call("GET", "/entity", kind=KIND_ROOT)
        return dict(data) if isinstance(data, Mapping) else {}

    def list_endpoints(self) -> list[tuple[str, str]]:
        return _endpoint_list(self.root())

    def get_entities(
        self,
        entity: str,
        *,
        filter: str | None = None,
        select: str | None = None,
        expand: str | None = None,
        top: int | None = None,
        skip: int | None = None,
        custom: str | None = None,
    ) -> list[dict[str, Any]]:
        """GET /entity/{endpoint}/{version}/{entity} with $-parameters (values come wrapped)."""
        params = {
            "$filter": filter,
            "$select": select,
            "$expand": expand,
            "$top": top,
            "$skip": skip,
            "$custom": custom,
        }
        data = self._call("GET", self.client.entity_path(entity) + _query(params), kind=KIND_ENTITY)
        if isinstance(data, Mapping):
            return [dict(data)]
        return [dict(record) for record in data or []]

    def iterate_pages(
        self, entity: str, page_size: int = DEFAULT_PAGE_SIZE, **query: Any
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages of `page_size` records with $top/$skip, until a short (or empty) page."""
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        skip = 0
        while True:
            page = self.get_entities(entity, top=page_size, skip=skip, **query)
            if page:
                yield page
            if len(page) < page_size:
                return
            skip += page_size

    def first_stock_item(self) -> dict[str, Any] | None:
        items = self.get_entities("StockItem", top=1)
        return items[0] if items else None

    def odata_gi(self, name: str, **query: Any) -> list[dict[str, Any]]:
        return self.client._odata(name, bearer=not self.cookie, **query)

    # -- the Customization API -------------------------------------------------------------

    def import_project(
        self,
        name: str,
        description: str,
        zip_bytes: bytes,
        level: int = 0,
        replace: bool = True,
    ) -> list[PublishLogEntry]:
        """POST /CustomizationApi/import. Empty content removes the project."""
        body = {
            "projectName": name,
            "projectDescription": description,
            "projectLevel": int(level),
            "isReplaceIfExists": bool(replace),
            "projectContentBase64": base64.b64encode(zip_bytes).decode("ascii"),
        }
        return self._customization("import", body)

    def remove_project(self, name: str) -> list[PublishLogEntry]:
        return self.import_project(name, "", b"", replace=True)

    def publish_begin(
        self,
        project_names: Sequence[str],
        tenant_mode: str = "Current",
        merge: bool = True,
        *,
        only_validation: bool = False,
    ) -> list[PublishLogEntry]:
        """POST /CustomizationApi/publishBegin (merged with what is published, by default)."""
        body = {
            "projectNames": list(project_names),
            "tenantMode": tenant_mode,
            "isMergeWithExistingPackages": bool(merge),
            "isOnlyValidation": bool(only_validation),
            "isOnlyDbUpdates": False,
            "isReplayPreviouslyExecutedScripts": False,
        }
        return self._customization("publishBegin", body)

    def publish_end(self) -> PublishStatus:
        """POST /CustomizationApi/publishEnd: `{isCompleted, isFailed, log}` of the publish."""
        data = self._call("POST", "/CustomizationApi/publishEnd", kind=KIND_CUSTOMIZATION, body={})
        data = data if isinstance(data, Mapping) else {}
        return PublishStatus(
            is_completed=bool(data.get("isCompleted")),
            is_failed=bool(data.get("isFailed")),
            log=_log_entries(data),
        )

    def publish(
        self,
        project_names: Sequence[str],
        tenant_mode: str = "Current",
        merge: bool = True,
        *,
        poll_interval: float = DEFAULT_PUBLISH_POLL_SECONDS,
        timeout: float = DEFAULT_PUBLISH_TIMEOUT_SECONDS,
        on_progress: Callable[[PublishStatus], None] | None = None,
    ) -> PublishStatus:
        """Start publishing, then poll publishEnd until it completes.

        1. publishBegin (its log's errors raise `AcumaticaCustomizationError`).
        2. Every `poll_interval` s, publishEnd; `on_progress(status)` after each poll.
        3. `isFailed` raises `AcumaticaCustomizationError` with the log; `isCompleted` ends.
        The website restarts while publishing: dropped connections, 5xx pages and a 401
        (answered by one sign-in) are waited out until `timeout`.
        """
        self.publish_begin(project_names, tenant_mode, merge)
        deadline = time.monotonic() + timeout
        polls = 0
        while True:
            try:
                status = self.publish_end()
            except (AcumaticaConnectionError, AcumaticaTimeout, AcumaticaServerError):
                if time.monotonic() > deadline:
                    raise
                self.client.sleep(poll_interval)
                continue
            polls += 1
            status.polls = polls
            if on_progress is not None:
                on_progress(status)
            if status.is_failed:
                errors = _errors_in(status.log) or [entry.message for entry in status.log[-3:]]
                raise AcumaticaCustomizationError(
                    f"Publishing {', '.join(project_names)} failed: "
                    f"{redact('; '.join(errors), self.client.secrets) or 'no log'}",
                    log=status.log,
                )
            if status.is_completed:
                return status
            if time.monotonic() > deadline:
                raise AcumaticaTimeout(
                    f"Publishing {', '.join(project_names)} did not finish within {timeout:g} s; "
                    "check the Customization Projects form (SM204505)."
                )
            self.client.sleep(poll_interval)

    def get_published(self) -> list[str]:
        """POST /CustomizationApi/getPublished: the names of the published projects."""
        data = self._call(
            "POST", "/CustomizationApi/getPublished", kind=KIND_CUSTOMIZATION, body={}
        )
        projects = data.get("projects") if isinstance(data, Mapping) else None
        return [
            str(project["name"])
            for project in projects or []
            if isinstance(project, Mapping) and project.get("name")
        ]

    def _customization(self, action: str, body: Mapping[str, Any]) -> list[PublishLogEntry]:
        data = self._call("POST", f"/CustomizationApi/{action}", kind=KIND_CUSTOMIZATION, body=body)
        log = _log_entries(data)
        errors = _errors_in(log)
        if errors:
            name = body.get("projectName") or ", ".join(body.get("projectNames") or [])
            raise AcumaticaCustomizationError(
                f"The Customization API refused {action} of {name}: "
                f"{redact('; '.join(errors), self.client.secrets)}",
                log=log,
                endpoint=f"POST /CustomizationApi/{action}",
            )
        return log

    # -- plumbing ---------------------------------------------------------------------------

    def _call(self, method: str, path: str, *, kind: str, body: Any = None) -> Any:
        """One authenticated request; on a 401, sign in (or renew the token) once and retry."""
        data = json.dumps(body).encode() if body is not None else None
        endpoint = f"{method} {path.split('?', 1)[0]}"
        for attempt in (1, 2):
            headers = {"Content-Type": "application/json"} if data is not None else {}
            if not self.cookie:
                headers["Authorization"] = f"Bearer {self.client.ensure_token().access_token}"
            response, _ = self.client._send(
                self._http, method, path, kind=kind, data=data, headers=headers, raise_for=None
            )
            if response.status_code == 401 and attempt == 1:
                if self.cookie:
                    self.login()
                else:
                    self.client.ensure_token(force=True)
                continue
            self.client._raise_for(response, kind, endpoint)
            if not response.content.strip():
                return None
            return response.json()
        raise AssertionError("unreachable")  # pragma: no cover
