"""What the settings screens and `connector_config` do: test, save, describe, authorize."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.urls import reverse

from connector import acumatica
from connector.acumatica_connection import client_for
from connector.crypto import SecretDecryptionError
from connector.magento import ConnectionReport, MagentoClient, MagentoError
from connector.models import AuditEntry
from setup_params.models import AcumaticaSettings, MagentoSettings, Profile
from setup_params.validation import (
    ACUMATICA_FIELDS,
    MAGENTO_KEYS,
    QUEUE_KEYS,
    SECRET_KEYS,
    SETTING_KEYS,
)

SECRET_SET = "•••• set"
TOKENS_SET = "set"
# The audit's name for the stored OAuth tokens (their values are never shown anywhere).
TOKENS_FIELD = "acumatica_tokens"
# The model attribute and the encrypted column behind each secret key.
SECRET_FIELDS = {
    "magento_token": ("token", "token_encrypted"),
    "acumatica_password": ("password", "password_encrypted"),
    "acumatica_client_secret": ("client_secret", "client_secret_encrypted"),
}
# A change of these makes the stored tokens another instance's (or another client's): they
# are dropped, so that a token is never sent to an address it was not issued for.
TOKEN_BOUND_KEYS = ("acumatica_url", "acumatica_client_id")
# What Test Connection may take as typed instead of stored (connector.acumatica's names).
CLIENT_OVERRIDES = (
    "instance_url", "endpoint", "version", "tenant", "branch", "auth", "username",
    "password", "client_id", "client_secret", "scopes", "timeout",
)


@dataclass(frozen=True)
class ConnectionOutcome:
    ok: bool
    message: str
    report: ConnectionReport | acumatica.ConnectionReport | None = None
    # Acumatica: the endpoints and versions the instance offers, as (name, version).
    endpoints: tuple[tuple[str, str], ...] = ()

    def versions_by_endpoint(self) -> dict[str, list[str]]:
        listed: dict[str, list[str]] = {}
        for name, version in self.endpoints:
            listed.setdefault(name, []).append(version)
        return listed


def magento_client_for(
    magento_settings: MagentoSettings, token: str | None = None
) -> MagentoClient:
    """A client for these settings; `token` (when given) instead of the stored one."""
    return MagentoClient(
        magento_settings.magento_url,
        token or magento_settings.token,
        store_code=magento_settings.store_code,
        timeout=magento_settings.timeout,
        verify_tls=magento_settings.verify_tls,
    )


def test_magento_connection(
    magento_settings: MagentoSettings, token: str | None = None
) -> ConnectionOutcome:
    """GET modules and store configs with these settings (saved or not); never raises.

    The settings may be an unsaved copy of what a user typed: nothing is written.
    """
    if not magento_settings.magento_url:
        return ConnectionOutcome(False, "Enter the Magento URL first.")
    try:
        token = token or magento_settings.token
    except SecretDecryptionError as error:
        return ConnectionOutcome(False, f"The stored bearer token cannot be read: {error}")
    if not token:
        return ConnectionOutcome(
            False, "Enter the bearer token first: no token is stored for this profile."
        )
    try:
        with magento_client_for(magento_settings, token) as client:
            report = client.test_connection()
    except MagentoError as error:
        return ConnectionOutcome(False, str(error))
    return ConnectionOutcome(True, report.summary(), report)


test_magento_connection.__test__ = False  # a service, not a pytest test


def test_acumatica_connection(profile: Profile, **overrides: Any) -> ConnectionOutcome:
    """Sign in, list the endpoints and versions, read one StockItem, sign out; never raises.

    `overrides` (connector.acumatica.AcumaticaSettings' names, see CLIENT_OVERRIDES) replace
    the stored settings: the screen tests what is typed, and nothing typed is saved. An
    empty password or client secret falls back to the stored one. Stored OAuth tokens are
    used (and renewed ones stored) only when the address and credentials are the stored
    ones: a token is never sent where it was not issued, nor replaced by a test of
    unsaved settings.
    """
    unknown = set(overrides) - set(CLIENT_OVERRIDES)
    if unknown:
        raise TypeError(f"unknown Acumatica settings: {', '.join(sorted(unknown))}")
    for secret in ("password", "client_secret"):
        if not overrides.get(secret):
            overrides.pop(secret, None)
    try:
        client = client_for(profile, **overrides)
    except SecretDecryptionError as error:
        return ConnectionOutcome(False, f"A stored Acumatica secret cannot be read: {error}")
    with client:
        problem = missing_acumatica_setting(client.settings)
        if problem:
            return ConnectionOutcome(False, problem)
        if not uses_stored_authorization(profile.acumatica_settings, client.settings):
            client.tokens = None
            client.on_tokens = None
        try:
            report = client.test_connection()
        except acumatica.AcumaticaError as error:
            available = getattr(error, "available", ())
            return ConnectionOutcome(False, str(error), endpoints=tuple(available))
    return ConnectionOutcome(True, report.summary(), report, endpoints=tuple(report.endpoints))


test_acumatica_connection.__test__ = False  # a service, not a pytest test


def missing_acumatica_setting(typed: acumatica.AcumaticaSettings) -> str:
    """The sentence for what a sign-in still lacks, or "" when nothing is missing."""
    if not typed.instance_url:
        return "Enter the Acumatica instance URL first."
    if typed.auth == acumatica.AUTH_COOKIE:
        if not typed.username:
            return "Enter the Acumatica username first."
        if not typed.password:
            return "Enter the password first: no password is stored for this profile."
        return ""
    if not typed.client_id:
        return (
            "Enter the client id first: it is on Acumatica's Connected Applications form "
            "(SM303010), as <GUID>@<Tenant>."
        )
    if not typed.client_secret:
        return "Enter the client secret first: no client secret is stored for this profile."
    return ""


def uses_stored_authorization(
    stored: AcumaticaSettings, typed: acumatica.AcumaticaSettings
) -> bool:
    """Whether the typed settings sign in where, and as whom, the stored tokens belong."""
    return (
        acumatica.normalize_instance_url(typed.instance_url)[0]
        == acumatica.normalize_instance_url(stored.instance_url)[0]
        and typed.client_id == stored.client_id
        and typed.client_secret == stored.client_secret
        and typed.username == stored.username
        and typed.password == stored.password
    )


# --- OAuth 2.0: the authorization-code flow ---------------------------------------------------


def oauth_callback_url() -> str:
    """The Redirect URI to register on Acumatica's Connected Applications form."""
    return settings.CONNECTOR_BASE_URL + reverse("acumatica_oauth_callback")


def oauth_sign_in_problem(profile: Profile) -> str:
    """Why Sign in with Acumatica cannot start with the stored settings, or ""."""
    stored = profile.acumatica_settings
    if stored.auth != AcumaticaSettings.Auth.OAUTH2:
        return "Choose OAuth 2.0 as the authentication and save before signing in with Acumatica."
    if not stored.instance_url:
        return "Save the Acumatica instance URL before signing in with Acumatica."
    if not stored.client_id:
        return "Save the client id before signing in with Acumatica."
    if not stored.client_secret_encrypted:
        return "Save the client secret before signing in with Acumatica."
    return ""


def authorization_url(profile: Profile, redirect_uri: str, state: str) -> str:
    """Where the browser signs in to Acumatica and approves the connector (stored settings)."""
    with client_for(profile) as client:
        return client.authorization_url(redirect_uri, state)


def complete_authorization(
    profile: Profile, code: str, redirect_uri: str, *, user=None
) -> ConnectionOutcome:
    """Trade the callback's code for tokens; store them encrypted and audit; never raises."""
    try:
        client = client_for(profile)
    except SecretDecryptionError as error:
        return ConnectionOutcome(False, f"A stored Acumatica secret cannot be read: {error}")
    # A new grant replaces whatever was stored; it is stored below with its audit entry.
    client.tokens = None
    client.on_tokens = None
    with client:
        try:
            tokens = client.exchange_code(code, redirect_uri)
        except acumatica.AcumaticaError as error:
            return ConnectionOutcome(False, str(error))
    store_authorization(profile, tokens, user=user)
    message = "Signed in with Acumatica: the connector is authorized (OAuth 2.0)."
    if not tokens.refresh_token:
        message += (
            " Acumatica sent no refresh token, so the authorization ends when the access "
            "token expires: add offline_access to the scopes and sign in again."
        )
    return ConnectionOutcome(True, message)


def store_authorization(profile: Profile, tokens: acumatica.OAuthTokens, *, user=None) -> None:
    with transaction.atomic():
        stored = AcumaticaSettings.objects.select_for_update().get(profile=profile)
        stored.access_token = tokens.access_token
        stored.refresh_token = tokens.refresh_token or ""
        stored.token_expires_at = tokens.expires_at
        stored.save(update_fields=[
            "access_token_encrypted", "refresh_token_encrypted", "token_expires_at",
        ])
        AuditEntry.record(
            AuditEntry.Kind.SETTINGS_CHANGED, user=user, profile=profile,
            fields=[TOKENS_FIELD], detail="signed in with Acumatica (OAuth 2.0)",
        )
    profile.acumatica_settings = stored


def has_tokens(stored: AcumaticaSettings) -> bool:
    return bool(stored.access_token_encrypted or stored.refresh_token_encrypted)


def clear_tokens(stored: AcumaticaSettings) -> list[str]:
    stored.access_token = ""
    stored.refresh_token = ""
    stored.token_expires_at = None
    return ["access_token_encrypted", "refresh_token_encrypted", "token_expires_at"]


# --- saving and describing --------------------------------------------------------------------


def settings_target(profile: Profile, key: str):
    """The row that stores `key`: the profile or its Magento, queue or Acumatica settings."""
    if key in MAGENTO_KEYS:
        return profile.magento_settings
    if key in QUEUE_KEYS:
        return profile.queue_settings
    if key in ACUMATICA_FIELDS:
        return profile.acumatica_settings
    return profile


def field_name(key: str) -> str:
    """The attribute of the settings row behind a key (a secret's plaintext property)."""
    if key in SECRET_FIELDS:
        return SECRET_FIELDS[key][0]
    return ACUMATICA_FIELDS.get(key, key)


def current_value(profile: Profile, key: str) -> Any:
    return getattr(settings_target(profile, key), field_name(key))


def differs(profile: Profile, key: str, value: Any) -> bool:
    try:
        return current_value(profile, key) != value
    except SecretDecryptionError:
        return True  # a stored secret nobody can read is replaced by the new one


def is_set(profile: Profile, key: str) -> bool:
    """Whether a secret is stored, without decrypting it."""
    return bool(getattr(settings_target(profile, key), SECRET_FIELDS[key][1]))


def save_settings(
    profile: Profile, values: dict[str, Any], *, user=None, actor: str = ""
) -> list[str]:
    """Store the values that differ from the stored ones; one audit entry names them.

    `values` holds checked values by key (see setup_params.validation). A secret is compared
    and audited by name only. A new Acumatica address or client id drops the stored OAuth
    tokens (`acumatica_tokens` is then among the changes). Returns the changed keys, sorted.
    """
    changed = sorted(key for key, value in values.items() if differs(profile, key, value))
    if not changed:
        return []
    update_fields: dict[Any, list[str]] = {}
    for key in changed:
        target = settings_target(profile, key)
        setattr(target, field_name(key), values[key])
        column = SECRET_FIELDS[key][1] if key in SECRET_FIELDS else field_name(key)
        update_fields.setdefault(target, []).append(column)
    stored = profile.acumatica_settings
    if any(key in changed for key in TOKEN_BOUND_KEYS) and has_tokens(stored):
        update_fields.setdefault(stored, []).extend(clear_tokens(stored))
        changed = sorted([*changed, TOKENS_FIELD])
    with transaction.atomic():
        for target, columns in update_fields.items():
            target.save(update_fields=columns)
        AuditEntry.record(
            AuditEntry.Kind.SETTINGS_CHANGED, user=user, actor=actor, profile=profile,
            fields=changed,
        )
    return changed


def rotate_push_secret(profile: Profile, *, user=None, actor: str = "") -> str:
    """A new push secret; Acumatica's Header Value must be changed to it."""
    with transaction.atomic():
        secret = profile.rotate_push_secret()
        AuditEntry.record(
            AuditEntry.Kind.SECRET_ROTATED, user=user, actor=actor, profile=profile,
            fields=["push_secret"],
        )
    return secret


def describe_profile(profile: Profile, *, reveal: bool = False) -> dict[str, Any]:
    """Every setting of a profile, with its state and push address; secrets masked.

    `reveal` shows the secrets one can type (push secret, token, password, client secret).
    The OAuth tokens are never shown: only whether they are set, and until when.
    """
    description: dict[str, Any] = {
        "profile": profile.name,
        "state": profile.state,
        "push_url": profile.push_url,
        "push_secret": (
            profile.push_secret if reveal
            else (SECRET_SET if profile.push_secret_encrypted else "")
        ),
    }
    for key in SETTING_KEYS:
        if key in SECRET_KEYS and not reveal:
            description[key] = SECRET_SET if is_set(profile, key) else ""
        else:
            description[key] = current_value(profile, key)
    stored = profile.acumatica_settings
    description[TOKENS_FIELD] = TOKENS_SET if has_tokens(stored) else ""
    expires_at = stored.token_expires_at
    description["acumatica_token_expires_at"] = expires_at.isoformat() if expires_at else ""
    return description
