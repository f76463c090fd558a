"""Profiles and their settings in the admin. Secret columns are never shown here."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.db import models

from connector.models import AuditEntry
from setup_params.models import MagentoSettings, Profile, QueueSettings
from setup_params.validation import (
    SETTING_KEYS,
    InvalidSetting,
    check_setting,
    check_sleep_time,
)

SECRET_COLUMNS = ["push_secret_encrypted", "token_encrypted"]


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
