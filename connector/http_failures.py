"""What the Magento and Acumatica clients share about failed HTTP calls: short excerpts of
bodies, secrets masked, and one sentence per way a call can fail to get any answer.

Only `requests` and the standard library, like the clients.
"""

from __future__ import annotations

import json
import re
import socket
import ssl
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from http.client import RemoteDisconnected
from typing import Any, ClassVar
from urllib.parse import urlsplit

import requests

MESSAGE_EXCERPT_CHARS = 300
REDACTED = "••••"
MIN_REDACTED_LENGTH = 6

# The kinds of transport failure; each client maps them to its own error classes.
INVALID_URL = "invalid_url"
DNS = "dns"
REFUSED = "refused"
TLS_VERIFY = "tls_verify"
TLS = "tls"
CONNECT_TIMEOUT = "connect_timeout"
READ_TIMEOUT = "read_timeout"
DROPPED = "dropped"
OTHER = "other"


def excerpt(text: str) -> str:
    """A short, single-line excerpt of a body that is not JSON (an HTML page's title)."""
    title = re.search(r"<title[^>]*>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
    if title and title.group(1).strip():
        text = title.group(1)
    else:
        text = re.sub(r"<(script|style)\b.*?</\1>", " ", text, flags=re.IGNORECASE | re.DOTALL)
        text = re.sub(r"<[^>]+>", " ", text)
    text = " ".join(text.split())
    if len(text) > MESSAGE_EXCERPT_CHARS:
        text = text[: MESSAGE_EXCERPT_CHARS - 1] + "…"
    return text


def redact(text: str, secrets: Sequence[str]) -> str:
    """`text` with each secret replaced. Redact before cutting a text to an `excerpt`: a
    secret cut in half no longer matches, and its first half would leak."""
    for secret in secrets:
        # A few characters are no secret, and hiding them would garble every sentence.
        if secret and len(secret) >= MIN_REDACTED_LENGTH:
            text = text.replace(secret, REDACTED)
    return text


def parse_json(text: str) -> tuple[bool, Any]:
    try:
        return True, json.loads(text)
    except ValueError:
        return False, None


def causes(exc: BaseException) -> Iterator[BaseException]:
    """Every exception wrapped inside `exc` (requests → urllib3 → socket/ssl), once each."""
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked = [current.__cause__, current.__context__, getattr(current, "reason", None)]
        linked += [arg for arg in getattr(current, "args", ()) if isinstance(arg, BaseException)]
        stack.extend(item for item in linked if isinstance(item, BaseException))


class CallError(Exception):
    """A call that did not succeed; each client's errors subclass it. `str(error)` is a
    sentence for an operator, and the class attributes say what retrying can do."""

    retryable: ClassVar[bool] = False
    trips_outage_guard: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        duration_ms: float = 0.0,
        endpoint: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.duration_ms = duration_ms
        self.endpoint = endpoint

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status_code={self.status_code!r}, "
            f"endpoint={self.endpoint!r}, message={self.message!r})"
        )


@dataclass
class TransportFailure:
    kind: str
    sentence: str


def describe_transport_failure(
    exc: BaseException,
    *,
    system: str,
    url_name: str,
    url: str,
    timeout: float,
    endpoint: str,
    secrets: Sequence[str] = (),
) -> TransportFailure:
    """One sentence for a call that got no answer: `system` is "Magento" or "Acumatica",
    `url_name` what the operator calls the address ("Magento base URL")."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    found = list(causes(exc))

    def has(*types: type[BaseException]) -> BaseException | None:
        return next((cause for cause in found if isinstance(cause, types)), None)

    if isinstance(
        exc,
        requests.exceptions.MissingSchema
        | requests.exceptions.InvalidSchema
        | requests.exceptions.InvalidURL,
    ):
        return TransportFailure(INVALID_URL, f"The {url_name} is not a valid address.")
    if has(socket.gaierror) or any(type(c).__name__ == "NameResolutionError" for c in found):
        return TransportFailure(
            DNS, f"Could not resolve host '{host}': check the {url_name} (and this server's DNS)."
        )
    if has(ConnectionRefusedError):
        return TransportFailure(
            REFUSED,
            f"Connection refused by {host}:{port}: nothing answers there. Check the {url_name} "
            "and port, and that the web server is running.",
        )
    verify_error = has(ssl.SSLCertVerificationError)
    if verify_error is not None:
        reason = getattr(verify_error, "verify_message", "") or "certificate not trusted"
        return TransportFailure(
            TLS_VERIFY,
            f"TLS certificate verification failed for {host}:{port} ({reason}). Install a "
            f"certificate from a trusted authority on the {system} server, or turn TLS "
            "verification off for this connection if you trust the network.",
        )
    if isinstance(exc, requests.exceptions.SSLError) or has(ssl.SSLError):
        detail = excerpt(redact(str(has(ssl.SSLError) or exc), secrets))
        return TransportFailure(
            TLS,
            f"TLS handshake with {host}:{port} failed ({detail}). Check that the {url_name}'s "
            "scheme (https/http) and port are right.",
        )
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return TransportFailure(
            CONNECT_TIMEOUT,
            f"Could not connect to {host}:{port} within {timeout:g} s: check the {url_name} "
            "and any firewall in between.",
        )
    if isinstance(exc, requests.exceptions.Timeout) or has(TimeoutError, socket.timeout):
        return TransportFailure(
            READ_TIMEOUT, f"{system} did not answer within {timeout:g} s ({endpoint})."
        )
    if has(RemoteDisconnected, ConnectionResetError, BrokenPipeError) or isinstance(
        exc, requests.exceptions.ChunkedEncodingError
    ):
        return TransportFailure(
            DROPPED, f"{system} closed the connection without answering ({endpoint})."
        )
    return TransportFailure(
        OTHER,
        f"Could not reach {system} at {host}:{port} ({endpoint}): "
        f"{excerpt(redact(str(exc), secrets))}",
    )
