"""The Initialize / Deactivate screen: a profile's state, its history, its schedulers."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from connector.crypto import SecretDecryptionError
from connector.lifecycle import (
    CONFIRM_INITIALIZE,
    LifecycleError,
    activate,
    initialize,
    pause,
    processor_schedulers,
    stop,
)
from connector.models import AuditEntry
from connector.roles import can_manage
from setup_params.models import DEFAULT_PROFILE, Profile

LIFECYCLE_KINDS = [
    AuditEntry.Kind.INITIALIZE,
    AuditEntry.Kind.PAUSE,
    AuditEntry.Kind.ACTIVATE,
    AuditEntry.Kind.STOP,
]
HISTORY_SHOWN = 50


@require_http_methods(["GET", "POST"])
def lifecycle(request: HttpRequest) -> HttpResponse:
    name = request.GET.get("profile") or DEFAULT_PROFILE
    profile = get_object_or_404(Profile.objects.select_related("magento_settings"), name=name)
    manage = can_manage(request.user)
    if request.method == "POST":
        if not manage:
            raise PermissionDenied("Changing the connector needs the manage permission.")
        act(request, profile)
        return redirect(f"{reverse('lifecycle')}?profile={profile.name}")
    history = AuditEntry.objects.for_profile(profile).filter(kind__in=LIFECYCLE_KINDS)
    return render(
        request,
        "connector/lifecycle.html",
        {
            "profile": profile,
            "profiles": Profile.objects.values_list("name", flat=True),
            "history": history[:HISTORY_SHOWN],
            "schedulers": processor_schedulers(profile).select_related("interval").order_by("name"),
            # Viewers never get the secret in the HTML, not even masked.
            **(push_secret_context(profile) if manage else {"push_secret": None}),
            "confirm_initialize": CONFIRM_INITIALIZE,
            "State": Profile.State,
        },
    )


def act(request: HttpRequest, profile: Profile) -> None:
    """Do the posted action; its outcome (or why it cannot be done) becomes a message."""
    action = request.POST.get("action")
    if action == "deactivate":
        action = request.POST.get("mode")
    try:
        if action == "initialize":
            result = initialize(profile, user=request.user)
            messages.success(
                request,
                f"Profile '{profile}' is initialized and active. {result.magento_message} "
                f"Acumatica's push notifications go to "
                f"{result.push_url} with the header {result.push_header_name}.",
            )
        elif action == "pause":
            pause(profile, user=request.user)
            messages.success(
                request,
                f"Sync to Magento is paused for profile '{profile}': "
                "push notifications are stored, nothing is sent.",
            )
        elif action == "stop":
            stop(profile, user=request.user)
            messages.success(
                request,
                f"Push notifications are stopped for profile '{profile}': "
                "the receiver refuses them and the schedulers are off until "
                "Initialize.",
            )
        elif action == "activate":
            activate(profile, user=request.user)
            messages.success(request, f"Profile '{profile}' is active: sync to Magento resumes.")
        else:
            messages.error(
                request,
                "Choose Pause Sync to Magento or Stop Push Notification."
                if request.POST.get("action") == "deactivate"
                else "Unknown action.",
            )
    except LifecycleError as error:
        messages.error(request, str(error))


def push_secret_context(profile: Profile) -> dict:
    """The secret for a manager's eyes, or why it cannot be read."""
    try:
        return {"push_secret": profile.push_secret}
    except SecretDecryptionError as error:
        return {"push_secret": None, "push_secret_error": str(error)}
