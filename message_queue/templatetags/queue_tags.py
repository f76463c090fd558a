from __future__ import annotations

from django import template

register = template.Library()

STATUS_COLORS = {
    "pending": "primary",
    "processing": "info",
    "sent": "success",
    "failed": "danger",
    "skipped": "warning",
}


@register.filter
def status_color(status: str) -> str:
    """The Bootstrap colour of a message status's badge."""
    return STATUS_COLORS.get(status, "secondary")
