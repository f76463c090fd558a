from __future__ import annotations

from django.conf import settings

from connector.roles import can_manage, can_view


def connector(request) -> dict:
    user = getattr(request, "user", None)
    return {
        "can_manage": bool(user and can_manage(user)),
        "can_view": bool(user and can_view(user)),
        "sandbox_enabled": settings.SANDBOX_ENABLED,
    }
