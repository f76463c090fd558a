"""The Initialize / Deactivate screen: a profile's state, its Acumatica publishing runs (with
live progress), the package for setting Acumatica up by hand, its history, its schedulers."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from connector import provisioning
from connector.acumatica_project import (
    ProjectError,
    connector_project,
    project_name,
    push_notification_names,
)
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
from connector.models import AuditEntry, ProvisioningRun
from connector.roles import can_manage, manage_required
from setup_params.models import DEFAULT_PROFILE, Profile

LIFECYCLE_KINDS = [
    AuditEntry.Kind.INITIALIZE,
    AuditEntry.Kind.PAUSE,
    AuditEntry.Kind.ACTIVATE,
    AuditEntry.Kind.STOP,
    AuditEntry.Kind.PROVISIONING_FAILED,
]
HISTORY_SHOWN = 50
# The screen asks for the run's progress this often while Acumatica publishes.
RUN_POLL_MILLISECONDS = 2000


def _profile(request: HttpRequest) -> Profile:
    name = request.GET.get("profile") or DEFAULT_PROFILE
    return get_object_or_404(
        Profile.objects.select_related("magento_settings", "acumatica_settings"), name=name
    )


@require_http_methods(["GET", "POST"])
def lifecycle(request: HttpRequest) -> HttpResponse:
    profile = _profile(request)
    manage = can_manage(request.user)
    if request.method == "POST":
        if not manage:
            raise PermissionDenied("Changing the connector needs the manage permission.")
        act(request, profile)
        return redirect(f"{reverse('lifecycle')}?profile={profile.name}")
    history = AuditEntry.objects.for_profile(profile).filter(kind__in=LIFECYCLE_KINDS)
    run = provisioning.last_run(profile)
    last_initialize = (
        ProvisioningRun.objects.for_profile(profile)
        .filter(action=ProvisioningRun.Action.INITIALIZE, status=ProvisioningRun.Status.SUCCEEDED)
        .first()
    )
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
            "restart_warning": provisioning.RESTART_WARNING,
            "State": Profile.State,
            "run": run,
            "run_status": run_status(profile, run),
            "run_poll_ms": RUN_POLL_MILLISECONDS,
            "set_up_by_hand": provisioning.set_up_by_hand(profile),
            "last_initialize_manual": bool(last_initialize and last_initialize.manual),
            "project_name": project_name(profile),
            "push_notification_names": push_notification_names(profile),
        },
    )


@require_GET
@never_cache
def lifecycle_run(request: HttpRequest) -> JsonResponse:
    """The profile's last provisioning run, for the screen's progress area."""
    profile = _profile(request)
    return JsonResponse(run_status(profile, provisioning.last_run(profile)))


@require_GET
@never_cache
@manage_required
def lifecycle_package(request: HttpRequest) -> HttpResponse:
    """The customization project to import by hand. Manage only: it holds the push secret."""
    profile = _profile(request)
    try:
        project = connector_project(profile, active=True)
    except (ProjectError, SecretDecryptionError) as error:
        messages.error(request, f"The package cannot be built: {error}")
        return redirect(f"{reverse('lifecycle')}?profile={profile.name}")
    response = HttpResponse(project.package(), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{project.name}.zip"'
    return response


def run_status(profile: Profile, run: ProvisioningRun | None) -> dict:
    profile.refresh_from_db(fields=["state"])
    body: dict = {
        "profile": profile.name,
        "state": profile.state,
        "state_display": profile.get_state_display(),
        "run": None,
    }
    if run is not None:
        body["run"] = {
            "id": run.pk,
            "action": run.action,
            "action_display": run.get_action_display(),
            "manual": run.manual,
            "status": run.status,
            "status_display": run.get_status_display(),
            "finished": run.finished,
            "progress": run.progress,
            "project_name": run.project_name,
            "started_by": run.started_by,
            "created_at": run.created_at.isoformat(),
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            "log": run.log,
        }
    return body


def act(request: HttpRequest, profile: Profile) -> None:
    """Do the posted action; its outcome (or why it cannot be done) becomes a message."""
    action = request.POST.get("action")
    if action == "deactivate":
        action = request.POST.get("mode")
    try:
        if action == "initialize":
            manual = request.POST.get("manual_acumatica") in ("on", "1", "true")
            result = initialize(profile, user=request.user, manual_acumatica=manual)
            if result.run is None:
                messages.success(
                    request,
                    f"Profile '{profile}' is initialized and active. {result.magento_message} "
                    f"Acumatica is set up by hand: its push notifications go to "
                    f"{result.push_url} with the header {result.push_header_name}.",
                )
            else:
                messages.info(
                    request,
                    f"Initialize started for profile '{profile}'. {result.magento_message} "
                    f"Publishing {project_name(profile)} to Acumatica; the profile turns "
                    "active when it is published.",
                )
        elif action == "pause":
            pause(profile, user=request.user)
            messages.success(
                request,
                f"Sync to Magento is paused for profile '{profile}': "
                "push notifications are stored, nothing is sent.",
            )
        elif action == "stop":
            result = stop(profile, user=request.user)
            if result.run is None:
                messages.success(
                    request,
                    f"Push notifications are stopped for profile '{profile}': "
                    "the receiver refuses them and the schedulers are off until "
                    "Initialize.",
                )
                messages.warning(request, untick_sentence(result.untick))
            else:
                messages.info(
                    request,
                    f"Stop started for profile '{profile}': publishing {project_name(profile)} "
                    "with the push notifications inactive; the profile is stopped when it is "
                    "published.",
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


def untick_sentence(names: list[str]) -> str:
    quoted = " and ".join(f"'{name}'" for name in names)
    return (
        "Acumatica was set up by hand: on its Push Notifications form (SM302000), clear "
        f"Active on {quoted} and save, so that Acumatica stops sending."
    )


def push_secret_context(profile: Profile) -> dict:
    """The secret for a manager's eyes, or why it cannot be read."""
    try:
        return {"push_secret": profile.push_secret}
    except SecretDecryptionError as error:
        return {"push_secret": None, "push_secret_error": str(error)}
