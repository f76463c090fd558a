from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from connector.roles import can_manage
from setup_params import services
from setup_params.forms import SetupParametersForm
from setup_params.models import DEFAULT_PROFILE, Profile

ACTIONS = ("save", "test_connection")


def profile_from(request: HttpRequest) -> Profile:
    name = request.GET.get("profile") or DEFAULT_PROFILE
    return get_object_or_404(
        Profile.objects.select_related("magento_settings", "queue_settings"), name=name
    )


@require_http_methods(["GET", "POST"])
def setup_parameters(request: HttpRequest) -> HttpResponse:
    profile = profile_from(request)
    editable = can_manage(request.user)
    outcome = None
    if request.method == "POST":
        if not editable:
            raise PermissionDenied("Changing the connector needs the manage permission.")
        form = SetupParametersForm(request.POST, profile=profile)
        action = request.POST.get("action")
        if action not in ACTIONS:
            return HttpResponse("Unknown action.", status=400)
        if form.is_valid() and form.url_notice:
            messages.info(request, form.url_notice)
        if action == "save" and form.is_valid():
            changed = services.save_settings(profile, form.values(), user=request.user)
            if changed:
                messages.success(request, f"Settings saved ({', '.join(changed)} changed).")
            else:
                messages.info(request, "Nothing changed.")
            return redirect(f"{reverse('setup_parameters')}?profile={profile.name}")
        if action == "test_connection" and not form.connection_errors():
            # What is typed, not what is stored: nothing is saved by a test.
            outcome = services.test_magento_connection(
                form.magento_settings_typed(), token=form.typed_token()
            )
    else:
        form = SetupParametersForm(profile=profile, editable=editable)
    return render(
        request,
        "setup_params/setup_parameters.html",
        {
            "profile": profile,
            "profiles": Profile.objects.values_list("name", flat=True),
            "form": form,
            "editable": editable,
            "outcome": outcome,
        },
    )
