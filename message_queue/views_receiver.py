"""The push-notification receiver: POST /acumatica/push/<profile>/ (DESIGN.md sections 6, 7).

Answers in this order: unknown profile 404, missing secret 401, wrong secret 403, stopped 503,
body over the limit 413, malformed 400, unknown Query 422, then 200 once committed. Acumatica
retries an error reply, so an error means nothing was stored.
"""

from __future__ import annotations

import hmac
import logging

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from connector.roles import public
from message_queue.ingest import (
    MalformedNotification,
    UnknownQuery,
    parse_notification,
    store_notification,
)
from setup_params.models import Profile

logger = logging.getLogger(__name__)


def refuse(status: int, error: str) -> JsonResponse:
    return JsonResponse({"error": error}, status=status)


def secret_matches(presented: str, expected: str) -> bool:
    return hmac.compare_digest(presented.encode(), expected.encode())


@public
@csrf_exempt
@require_POST
def acumatica_push(request, profile: str):
    found = Profile.objects.select_related("magento_settings").filter(name=profile).first()
    if found is None:
        return refuse(404, f"No profile named '{profile}'.")
    presented = request.headers.get(found.push_header_name)
    if not presented:
        return refuse(401, f"The header '{found.push_header_name}' with the push secret is "
                      "missing.")
    if not secret_matches(presented, found.push_secret):
        logger.warning("Push notification for %s refused: wrong secret", found.name)
        return refuse(403, f"The '{found.push_header_name}' header does not hold this profile's "
                      "push secret.")
    if found.state == Profile.State.STOPPED:
        return refuse(503, "The connector is stopped for this profile; initialize it to receive "
                      "push notifications again.")
    limit = found.push_max_bytes
    try:
        declared_length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return refuse(400, "Content-Length is not a number.")
    if declared_length > limit:
        return refuse(413, f"The body ({declared_length} bytes) is over this profile's limit of "
                      f"{limit} bytes.")
    body = request.read(limit + 1)
    if len(body) > limit:
        return refuse(413, f"The body is over this profile's limit of {limit} bytes.")
    try:
        notification = parse_notification(body)
        result = store_notification(found, notification)
    except MalformedNotification as error:
        return refuse(400, str(error))
    except UnknownQuery as error:
        return refuse(422, str(error))
    logger.info(
        "Push notification %s (%s) for %s: %s",
        notification.notification_id, notification.query, found.name,
        "repeat, nothing stored" if result.duplicate else f"{result.keys_changed} keys changed",
    )
    return JsonResponse(result.as_json())
