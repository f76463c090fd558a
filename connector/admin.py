from __future__ import annotations

from django.contrib import admin
from django.db import models

from connector.models import AlertSettings, AlertState, AuditEntry


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """Read-only: the audit log is written by the connector, never edited."""

    list_display = ["created_at", "actor", "kind", "profile", "fields", "detail"]
    list_filter = ["kind", "profile"]
    search_fields = ["actor", "detail"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(AlertSettings)
class AlertSettingsAdmin(admin.ModelAdmin):
    """Where each profile's alerts go; the webhook URL is not listed (it may hold a token)."""

    list_display = ["profile", "email_recipients", "has_webhook", "failures_per_hour_threshold",
                    "oldest_pending_minutes"]
    list_select_related = ["profile"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if form.changed_data:  # field names only: the webhook URL may carry a token
            AuditEntry.record(
                AuditEntry.Kind.SETTINGS_CHANGED, user=request.user, profile=obj.profile,
                fields=form.changed_data, detail="alert settings changed in the admin",
            )

    @admin.display(boolean=True, description="webhook")
    def has_webhook(self, obj: AlertSettings) -> bool:
        return bool(obj.webhook_url)


@admin.register(AlertState)
class AlertStateAdmin(admin.ModelAdmin):
    """Read-only: which conditions are raised now, and what their last alert said."""

    list_display = ["condition", "profile", "raised", "raised_at", "cleared_at", "last_message"]
    list_filter = ["raised", "profile"]
    list_select_related = ["profile"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
