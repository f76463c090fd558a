"""What the Setup Parameters screen and `connector_config` do: test, save, describe."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction

from connector.crypto import SecretDecryptionError
from connector.magento import ConnectionReport, MagentoClient, MagentoError
from connector.models import AuditEntry
from setup_params.models import MagentoSettings, Profile
from setup_params.validation import MAGENTO_KEYS, QUEUE_KEYS, SETTING_KEYS

SECRET_SET = "•••• set"


@dataclass(frozen=True)
class ConnectionOutcome:
    ok: bool
    message: str
    report: ConnectionReport | None = None


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


def settings_target(profile: Profile, key: str):
    """The row that stores `key`: the profile, its Magento settings or its queue settings."""
    if key in MAGENTO_KEYS:
        return profile.magento_settings
    if key in QUEUE_KEYS:
        return profile.queue_settings
    return profile


def current_value(profile: Profile, key: str) -> Any:
    if key == "magento_token":
        return profile.magento_settings.token
    return getattr(settings_target(profile, key), key)


def save_settings(
    profile: Profile, values: dict[str, Any], *, user=None, actor: str = ""
) -> list[str]:
    """Store the values that differ from the stored ones; one audit entry names them.

    `values` holds checked values by key (see setup_params.validation). A secret is compared
    and audited by name only. Returns the changed keys, sorted.
    """
    changed = sorted(key for key, value in values.items() if current_value(profile, key) != value)
    if not changed:
        return []
    update_fields: dict[Any, list[str]] = {}
    for key in changed:
        target = settings_target(profile, key)
        if key == "magento_token":
            target.token = values[key]
            column = "token_encrypted"
        else:
            setattr(target, key, values[key])
            column = key
        update_fields.setdefault(target, []).append(column)
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
    """Every setting of a profile, with its state and push address; secrets masked."""

    def secret(value: str) -> str:
        return value if reveal else (SECRET_SET if value else "")

    description: dict[str, Any] = {
        "profile": profile.name,
        "state": profile.state,
        "push_url": profile.push_url,
        "push_secret": secret(profile.push_secret),
    }
    for key in SETTING_KEYS:
        value = current_value(profile, key)
        description[key] = secret(value) if key == "magento_token" else value
    return description
