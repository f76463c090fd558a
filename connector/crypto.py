"""Secrets at rest: AES-256-GCM keyed by CONNECTOR_ENCRYPTION_KEY, stored with a key id.

A stored value reads `v1:<key id>:<base64 of nonce + ciphertext>`. The key id lets an old
key (listed in CONNECTOR_OLD_ENCRYPTION_KEYS) still decrypt after a rotation.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

FORMAT_VERSION = "v1"
NONCE_BYTES = 12


class SecretDecryptionError(Exception):
    """The stored secret cannot be read with any configured key."""


def _decode_key(encoded: str, variable: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(encoded.encode() + b"=" * (-len(encoded) % 4))
    except (binascii.Error, ValueError) as error:
        raise ImproperlyConfigured(f"{variable} is not URL-safe base64.") from error
    if len(key) != 32:
        raise ImproperlyConfigured(
            f"{variable} must be 32 bytes in URL-safe base64 (44 characters); "
            "make one with: python -c \"import base64, os; "
            "print(base64.urlsafe_b64encode(os.urandom(32)).decode())\""
        )
    return key


def key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:8]


def _keys() -> tuple[bytes, dict[str, bytes]]:
    primary = _decode_key(settings.CONNECTOR_ENCRYPTION_KEY, "CONNECTOR_ENCRYPTION_KEY")
    known = {key_id(primary): primary}
    for old in getattr(settings, "CONNECTOR_OLD_ENCRYPTION_KEYS", []):
        old_key = _decode_key(old, "CONNECTOR_OLD_ENCRYPTION_KEYS")
        known.setdefault(key_id(old_key), old_key)
    return primary, known


def encrypt(plaintext: str) -> str:
    primary, _ = _keys()
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(primary).encrypt(nonce, plaintext.encode(), None)
    return f"{FORMAT_VERSION}:{key_id(primary)}:{base64.b64encode(nonce + sealed).decode()}"


def decrypt(stored: str) -> str:
    try:
        version, stored_key_id, payload = stored.split(":", 2)
    except ValueError as error:
        raise SecretDecryptionError("The stored secret is not in the expected format.") from error
    _, known = _keys()
    key = known.get(stored_key_id)
    if version != FORMAT_VERSION or key is None:
        raise SecretDecryptionError(
            f"The stored secret was encrypted with key {stored_key_id}, which is not configured "
            "(add the old key to CONNECTOR_OLD_ENCRYPTION_KEYS)."
        )
    raw = base64.b64decode(payload)
    try:
        return AESGCM(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], None).decode()
    except InvalidTag as error:
        raise SecretDecryptionError("The stored secret failed its integrity check.") from error


def needs_reencryption(stored: str) -> bool:
    primary, _ = _keys()
    return not stored.startswith(f"{FORMAT_VERSION}:{key_id(primary)}:")


def secret_property(column: str, doc: str = "") -> property:
    """A plaintext view of an encrypted column: reading decrypts, assigning encrypts.

    Assigning "" clears the secret.
    """

    def read(instance) -> str:
        stored = getattr(instance, column)
        return decrypt(stored) if stored else ""

    def write(instance, plaintext: str) -> None:
        setattr(instance, column, encrypt(plaintext) if plaintext else "")

    return property(read, write, doc=doc)
