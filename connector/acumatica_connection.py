"""An Acumatica client for a profile: its settings, its stored tokens, and the instance's
concurrency slots shared by every process (DESIGN.md section 5, implementation notes)."""

from __future__ import annotations

import hashlib
from datetime import datetime

from django.conf import settings
from django.db import transaction

from connector.acumatica import (
    AcumaticaClient,
    AcumaticaSettings,
    FileLockSlots,
    OAuthTokens,
    RedisSlots,
    Slots,
    normalize_instance_url,
)
from setup_params.models import AcumaticaSettings as StoredSettings
from setup_params.models import Profile

SLOT_MARGIN_SECONDS = 30


def instance_slots(instance_url: str, concurrency: int, timeout: float) -> Slots:
    """The concurrency level is per instance (the license is): Redis slots that expire when
    the broker is Redis, else fcntl lock files under var/ (the OS frees a killed holder's)."""
    instance, _ = normalize_instance_url(instance_url)
    name = hashlib.sha256(instance.lower().encode()).hexdigest()[:16]
    broker = settings.CELERY_BROKER_URL
    if broker.startswith(("redis://", "rediss://")):
        return RedisSlots(broker, f"connector:acumatica-slots:{name}", concurrency,
                          expire_seconds=timeout + SLOT_MARGIN_SECONDS)
    return FileLockSlots(settings.VAR_DIR / "acumatica-slots" / name, concurrency)


def client_settings(stored: StoredSettings, **overrides) -> AcumaticaSettings:
    values = {
        "instance_url": stored.instance_url,
        "endpoint": stored.endpoint,
        "version": stored.version,
        "tenant": stored.tenant,
        "branch": stored.branch,
        "auth": stored.auth,
        "username": stored.username,
        "password": stored.password,
        "client_id": stored.client_id,
        "client_secret": stored.client_secret,
        "scopes": stored.scopes,
        "timeout": stored.timeout,
    }
    values.update(overrides)
    return AcumaticaSettings(**values)


def client_for(profile: Profile, **overrides) -> AcumaticaClient:
    """`overrides` replace stored settings (Test Connection tests what is typed, unsaved)."""
    stored = profile.acumatica_settings
    client_values = client_settings(stored, **overrides)
    tokens = None
    if stored.access_token_encrypted or stored.refresh_token_encrypted:
        tokens = OAuthTokens(
            access_token=stored.access_token,
            refresh_token=stored.refresh_token or None,
            expires_at=stored.token_expires_at,
        )
    return AcumaticaClient(
        client_values,
        slots=instance_slots(client_values.instance_url, stored.concurrency,
                             float(client_values.timeout)),
        tokens=tokens,
        on_tokens=lambda access, refresh, expires_at: store_tokens(
            stored.pk, access, refresh, expires_at
        ),
    )


def store_tokens(settings_id: int, access: str, refresh: str | None, expires_at: datetime) -> None:
    """Each refresh returns a new refresh token that replaces the old (encrypted at rest)."""
    with transaction.atomic():
        stored = StoredSettings.objects.select_for_update().get(pk=settings_id)
        stored.access_token = access
        if refresh:
            stored.refresh_token = refresh
        stored.token_expires_at = expires_at
        stored.save(update_fields=["access_token_encrypted", "refresh_token_encrypted",
                                   "token_expires_at"])
