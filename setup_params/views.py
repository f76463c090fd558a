from __future__ import annotations

import secrets

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.crypto import constant_time_compare
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from connector.roles import can_manage, manage_required, public
from connector.security import allow_form_posts_to
from setup_params import services
from setup_params.forms import AcumaticaConnectionForm, SetupParametersForm
from setup_params.models import DEFAULT_PROFILE, Profile
from setup_params.validation import time_zone_names

ACTIONS = ("save", "test_connection")
# The session key of a sign-in with Acumatica in progress: its state, profile, redirect URI.
OAUTH_SESSION_KEY = "acumatica_oauth"
OAUTH_STATE_BYTES = 32


def profile_from(request: HttpRequest) -> Profile:
    name = request.GET.get("profile") or DEFAULT_PROFILE
    return get_object_or_404(
        Profile.objects.select_related(
            "magento_settings", "queue_settings", "acumatica_settings"
        ),
        name=name,
    )


def screen_url(url_name: str, profile: Profile) -> str:
    return f"{reverse(url_name)}?profile={profile.name}"


def save_and_report(request: HttpRequest, profile: Profile, form) -> list[str]:
    """Save a valid settings form and tell the user which fields changed."""
    changed = services.save_settings(profile, form.values(), user=request.user)
    if changed:
        messages.success(request, f"Settings saved ({', '.join(changed)} changed).")
    else:
        messages.info(request, "Nothing changed.")
    return changed


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
            save_and_report(request, profile, form)
            return redirect(screen_url("setup_parameters", profile))
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


@require_http_methods(["GET", "POST"])
def acumatica_connection(request: HttpRequest) -> HttpResponse:
    profile = profile_from(request)
    editable = can_manage(request.user)
    outcome = None
    if request.method == "POST":
        if not editable:
            raise PermissionDenied("Changing the connector needs the manage permission.")
        form = AcumaticaConnectionForm(request.POST, profile=profile)
        action = request.POST.get("action")
        if action not in ACTIONS:
            return HttpResponse("Unknown action.", status=400)
        if form.is_valid() and form.url_notice:
            messages.info(request, form.url_notice)
        if action == "save" and form.is_valid():
            changed = save_and_report(request, profile, form)
            if services.TOKENS_FIELD in changed:
                messages.warning(
                    request,
                    "The stored OAuth tokens were removed because the instance URL or the "
                    "client id changed: sign in with Acumatica again.",
                )
            return redirect(screen_url("acumatica_connection", profile))
        if action == "test_connection" and not form.connection_errors():
            # What is typed, not what is stored: nothing is saved by a test.
            outcome = services.test_acumatica_connection(profile, **form.client_overrides())
    else:
        form = AcumaticaConnectionForm(profile=profile, editable=editable)
    stored = profile.acumatica_settings
    offered = outcome.versions_by_endpoint() if outcome else {}
    response = render(
        request,
        "setup_params/acumatica_connection.html",
        {
            "profile": profile,
            "profiles": Profile.objects.values_list("name", flat=True),
            "form": form,
            "editable": editable,
            "outcome": outcome,
            "offered_versions": offered.get(form.typed_endpoint(), []),
            "time_zones": sorted(time_zone_names()),
            "callback_url": services.oauth_callback_url(),
            "authorized": services.has_tokens(stored),
            "refresh_token_stored": bool(stored.refresh_token_encrypted),
            "token_expires_at": stored.token_expires_at,
            "oauth_problem": services.oauth_sign_in_problem(profile),
        },
    )
    # Sign in with Acumatica posts here and is redirected to the instance's authorize page.
    return allow_form_posts_to(response, stored.instance_url)


@require_POST
@manage_required
def acumatica_oauth_start(request: HttpRequest) -> HttpResponse:
    """Sign in with Acumatica: remember a random state in the session, send the browser to
    Acumatica's authorize page (with the stored settings)."""
    profile = profile_from(request)
    problem = services.oauth_sign_in_problem(profile)
    if problem:
        messages.error(request, problem)
        return redirect(screen_url("acumatica_connection", profile))
    state = secrets.token_urlsafe(OAUTH_STATE_BYTES)
    redirect_uri = services.oauth_callback_url()
    request.session[OAUTH_SESSION_KEY] = {
        "state": state,
        "profile": profile.name,
        "redirect_uri": redirect_uri,
    }
    return redirect(services.authorization_url(profile, redirect_uri, state))


@public  # Acumatica sends the browser here; the session's state is what proves who started it
@require_GET
def acumatica_oauth_callback(request: HttpRequest) -> HttpResponse:
    """Acumatica's answer to Sign in with Acumatica: `?code=…&state=…` (or `?error=…`).

    1. The state must be the one this session started with (compared in constant time);
       otherwise 400 and nothing is stored: the link was not the connector's sign-in.
    2. An `error` from Acumatica (the user declined) goes back to the screen, said plainly.
    3. The code is traded for tokens, stored encrypted and audited (`acumatica_tokens`).
    """
    pending = request.session.get(OAUTH_SESSION_KEY)
    state = request.GET.get("state", "")
    if not isinstance(pending, dict) or not state or not constant_time_compare(
        state, str(pending.get("state", ""))
    ):
        return refuse_callback(
            request,
            "This sign-in answer does not belong to a sign-in started from this browser "
            "session (its state is missing or does not match), so it was ignored and "
            "nothing was stored. Start again with Sign in with Acumatica on the Acumatica "
            "Connection screen.",
        )
    del request.session[OAUTH_SESSION_KEY]  # a state is used once
    if not can_manage(request.user):
        raise PermissionDenied("Changing the connector needs the manage permission.")
    profile = get_object_or_404(
        Profile.objects.select_related("acumatica_settings"), name=pending.get("profile", "")
    )
    if request.GET.get("error"):
        reason = request.GET.get("error_description") or request.GET["error"]
        messages.error(
            request, f"Acumatica did not authorize the connector ({reason}). Nothing changed."
        )
        return redirect(screen_url("acumatica_connection", profile))
    code = request.GET.get("code", "")
    if not code:
        return refuse_callback(
            request, "Acumatica's answer carried no authorization code; nothing was stored."
        )
    outcome = services.complete_authorization(
        profile, code, pending["redirect_uri"], user=request.user
    )
    (messages.success if outcome.ok else messages.error)(request, outcome.message)
    return redirect(screen_url("acumatica_connection", profile))


def refuse_callback(request: HttpRequest, reason: str) -> HttpResponse:
    return render(
        request, "setup_params/acumatica_oauth_refused.html", {"reason": reason}, status=400
    )
