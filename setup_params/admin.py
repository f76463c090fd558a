"""Profiles and their settings in the admin. Secret columns are never shown here."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.db import models

from connector.models import AuditEntry
from setup_params import services
from setup_params.models import AcumaticaSettings, MagentoSettings, Profile, QueueSettings
from setup_params.validation import (
    ACUMATICA_FIELDS,
    SETTING_KEYS,
    InvalidSetting,
    check_setting,
    check_sleep_time,
)

SECRET_COLUMNS = ["push_secret_encrypted", "token_encrypted"]
ACUMATICA_SECRET_COLUMNS = [
    "password_encrypted", "client_secret_encrypted", "access_token_encrypted",
    "refresh_token_encrypted",
]
# AcumaticaSettings' field → its setting key (`instance_url` → `acumatica_url`).
ACUMATICA_KEYS_BY_FIELD = {field: key for key, field in ACUMATICA_FIELDS.items()}


class CheckedSettingsForm(forms.ModelForm):
    """The same rules as the Setup Parameters screen and `connector_config set`."""

    def clean(self):
        cleaned = super().clean()
        for name, value in list(cleaned.items()):
            if name not in SETTING_KEYS or value is None:
                continue
            try:
                cleaned[name] = check_setting(name, value)
            except InvalidSetting as error:
                self.add_error(name, str(error))
        sleep, check = cleaned.get("process_sleep_time"), cleaned.get("check_process_time")
        if sleep is not None and check is not None:
            try:
                check_sleep_time(sleep, check)
            except InvalidSetting as error:
                self.add_error("process_sleep_time", str(error))
        return cleaned


class AuditedAdmin(admin.ModelAdmin):
    form = CheckedSettingsForm

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change and form.changed_data:
            profile = obj if isinstance(obj, Profile) else obj.profile
            AuditEntry.record(
                AuditEntry.Kind.SETTINGS_CHANGED, user=request.user, profile=profile,
                fields=form.changed_data, detail="changed in the admin",
            )


@admin.register(Profile)
class ProfileAdmin(AuditedAdmin):
    list_display = ["name", "state", "state_changed_at", "state_changed_by", "push_header_name"]
    list_filter = ["state"]
    search_fields = ["name"]
    exclude = SECRET_COLUMNS
    # The state changes through Initialize / Deactivate, which also provision Acumatica.
    readonly_fields = ["state", "state_changed_at", "state_changed_by"]


@admin.register(MagentoSettings)
class MagentoSettingsAdmin(AuditedAdmin):
    list_display = ["profile", "magento_url", "store_code", "use_msi", "has_token"]
    exclude = SECRET_COLUMNS
    readonly_fields = ["has_token"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    @admin.display(boolean=True, description="token set")
    def has_token(self, obj: MagentoSettings) -> bool:
        return obj.has_token


@admin.register(QueueSettings)
class QueueSettingsAdmin(AuditedAdmin):
    list_display = [
        "profile", "threshold_count", "batch_count", "retry_count", "check_process_time",
        "process_sleep_time", "senders",
    ]
    exclude = SECRET_COLUMNS


class AcumaticaSettingsForm(forms.ModelForm):
    """The Acumatica Connection screen's rules; its fields are checked under their keys."""

    def clean(self):
        cleaned = super().clean()
        for name, value in list(cleaned.items()):
            key = ACUMATICA_KEYS_BY_FIELD.get(name)
            if key is None or value is None:
                continue
            try:
                cleaned[name] = check_setting(key, value)
            except InvalidSetting as error:
                self.add_error(name, str(error))
        return cleaned


@admin.register(AcumaticaSettings)
class AcumaticaSettingsAdmin(admin.ModelAdmin):
    """Passwords, client secrets and tokens are set on the Acumatica Connection screen or
    with `connector_config set`, never here."""

    form = AcumaticaSettingsForm
    list_display = [
        "profile", "instance_url", "endpoint", "version", "tenant", "auth", "has_password",
        "has_client_secret", "authorized",
    ]
    list_filter = ["auth", "endpoint"]
    exclude = ACUMATICA_SECRET_COLUMNS
    readonly_fields = ["has_password", "has_client_secret", "authorized", "token_expires_at"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    @admin.display(boolean=True, description="password set")
    def has_password(self, obj: AcumaticaSettings) -> bool:
        return bool(obj.password_encrypted)

    @admin.display(boolean=True, description="client secret set")
    def has_client_secret(self, obj: AcumaticaSettings) -> bool:
        return bool(obj.client_secret_encrypted)

    @admin.display(boolean=True, description="OAuth tokens set")
    def authorized(self, obj: AcumaticaSettings) -> bool:
        return bool(obj.access_token_encrypted or obj.refresh_token_encrypted)

    def save_model(self, request, obj, form, change):
        fields = [ACUMATICA_KEYS_BY_FIELD.get(name, name) for name in form.changed_data]
        if change and services.has_tokens(obj) and any(
            key in fields for key in services.TOKEN_BOUND_KEYS
        ):
            services.clear_tokens(obj)  # they belong to the old address or client
            fields.append(services.TOKENS_FIELD)
        super().save_model(request, obj, form, change)
        if change and fields:
            AuditEntry.record(
                AuditEntry.Kind.SETTINGS_CHANGED, user=request.user, profile=obj.profile,
                fields=fields, detail="changed in the admin",
            )
