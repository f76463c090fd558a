from __future__ import annotations

from django.conf import settings

from connector.roles import can_manage, can_view


def connector(request) -> dict:
    user = getattr(request, "user", None)
    viewing = bool(user and can_view(user))
    return {
        "can_manage": bool(user and can_manage(user)),
        "can_view": viewing,
        "sandbox_enabled": settings.SANDBOX_ENABLED,
        "outage_banners": outage_banners() if viewing else [],
    }


def outage_banners() -> list[str]:
    """One sentence per tripped outage guard: shown in red on every screen."""
    from message_queue.models import OutageGuard

    return [
        f"{guard.profile.name} {guard.get_entity_display()}: Magento is not accepting calls "
        f"since {guard.tripped_at:%Y-%m-%d %H:%M} UTC; one probe call per pass. Last error: "
        f"{guard.last_error}"
        for guard in OutageGuard.objects.filter(tripped=True).select_related("profile")
    ]
