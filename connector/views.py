from __future__ import annotations

from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from connector.health import run_checks
from connector.roles import public
from message_queue.views_screens import queue_dashboard


def home(request):
    """The home page is the queue dashboard (with the getting-started steps while the queue
    is empty)."""
    return queue_dashboard(request)


@public
@never_cache
@require_GET
def healthz(request):
    checks = run_checks()
    down = [check.name for check in checks if not check.ok]
    body = {
        "status": "ok" if not down else "down",
        "down": down,
        "checks": {check.name: {"ok": check.ok, "detail": check.detail} for check in checks},
    }
    return JsonResponse(body, status=503 if down else 200)
