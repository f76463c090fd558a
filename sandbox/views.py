"""The sandbox, served only while `SANDBOX_ENABLED`: both simulators and the demo page.

- `/sandbox/magento/…` and `/sandbox/acumatica/…` hand each request to the process's
  simulator (public: Magento and Acumatica clients do not log in to the connector). A
  simulator that would close the connection without an answer (`DropConnection`) cannot do
  that through Django: the mount answers 502 with an empty body instead, which clients treat
  as the same kind of failure (retryable, no answer to read).
- `/sandbox/` is the demo page (login and a role, like every screen): both catalogs, the
  latest push notifications, and *Simulate changes in Acumatica* (manage permission).
- `/sandbox/control/simulate` lets the `sandbox_changes` command, a separate process, ask
  this process's simulated Acumatica for changes. It is public (a command has no login) and
  wants the sandbox profile's push secret in `X-Sandbox-Secret`: whoever holds that secret
  can already post push notifications to the receiver, so the endpoint gives nobody a power
  they did not have. A loopback-only rule was the other choice; it would refuse the command
  behind a proxy or a container's port mapping and trust every local user.
"""

from __future__ import annotations

import hmac
import json

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.encoding import escape_uri_path
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from connector.crypto import SecretDecryptionError
from connector.roles import manage_required, public
from sandbox import demo
from sandbox.forms import SimulateChangesForm
from sandbox.magento import DropConnection
from setup_params.models import Profile

CONTROL_SECRET_HEADER = "X-Sandbox-Secret"
REFRESH_SECONDS = 3


# --- the simulators --------------------------------------------------------------------------


@public
@csrf_exempt
def magento_mount(request: HttpRequest, path: str = "") -> HttpResponse:
    return forward(demo.magento_simulator(), request, path)


@public
@csrf_exempt
def acumatica_mount(request: HttpRequest, path: str = "") -> HttpResponse:
    # The simulator builds its absolute URLs (endpoint hrefs, OpenID discovery) as
    # http://{Host}: with the mount in the host they point here.
    return forward(
        demo.acumatica_simulator(), request, path, host=request.get_host() + demo.ACUMATICA_MOUNT
    )


def forward(simulator, request: HttpRequest, path: str, *, host: str = "") -> HttpResponse:
    """The simulator's answer to this request, as a Django response."""
    target = escape_uri_path("/" + path)
    query = request.META.get("QUERY_STRING", "")
    if query:
        target += "?" + query
    headers = dict(request.headers)
    if host:
        headers["Host"] = host
    try:
        status, answer_headers, body = simulator.handle(
            request.method, target, headers, request.body
        )
    except DropConnection:
        # Django cannot close a connection without answering: an empty 502 stands in.
        return HttpResponse(b"", status=502)
    response = HttpResponse(body, status=status)
    # `items()` gives every pair, Set-Cookie once per cookie (sandbox.acumatica.Headers):
    # each goes into the response's cookie jar, which Django writes as one header per cookie.
    for name, value in answer_headers.items():
        if name.lower() == "set-cookie":
            response.cookies.load(value)
        else:
            response[name] = value
    return response


# --- the demo page ---------------------------------------------------------------------------


@require_GET
def sandbox_catalog(request: HttpRequest) -> HttpResponse:
    profile = Profile.objects.filter(name=demo.SANDBOX_PROFILE).first()
    return render(
        request,
        "sandbox/sandbox_catalog.html",
        {
            "snapshot": demo.catalog_snapshot(),
            "form": SimulateChangesForm(),
            "profile": profile,
            "initialize_url": initialize_url(),
            "magento_url": demo.magento_url(),
            "acumatica_url": demo.acumatica_url(),
            "refresh_seconds": REFRESH_SECONDS,
            "State": Profile.State,
        },
    )


@never_cache
@require_GET
def sandbox_catalog_data(request: HttpRequest) -> JsonResponse:
    return JsonResponse(demo.catalog_snapshot())


@require_POST
@manage_required
def sandbox_simulate(request: HttpRequest) -> HttpResponse:
    form = SimulateChangesForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(form.errors.get("count", ["Enter a number."])))
    else:
        try:
            result = demo.simulate_changes(form.cleaned_data["count"])
        except demo.NothingPublished as error:
            messages.error(request, str(error))
        else:
            report = messages.success if not result.failed else messages.warning
            report(request, result.summary())
    return redirect("sandbox_catalog")


def initialize_url() -> str:
    return f"{reverse('lifecycle')}?profile={demo.SANDBOX_PROFILE}"


# --- the control endpoint (sandbox_changes) --------------------------------------------------


@public
@csrf_exempt
@require_POST
def control_simulate(request: HttpRequest) -> JsonResponse:
    """POST {"count": N} with the sandbox profile's push secret in X-Sandbox-Secret."""
    profile = Profile.objects.filter(name=demo.SANDBOX_PROFILE).first()
    if profile is None:
        return _refuse(404, "There is no sandbox profile: run `manage.py sandbox_setup`.")
    presented = request.headers.get(CONTROL_SECRET_HEADER, "")
    if not presented:
        return _refuse(401, f"The header '{CONTROL_SECRET_HEADER}' with the sandbox profile's "
                       "push secret is missing.")
    try:
        expected = profile.push_secret
    except SecretDecryptionError as error:
        return _refuse(500, f"The sandbox profile's push secret cannot be read: {error}")
    if not hmac.compare_digest(presented.encode(), expected.encode()):
        return _refuse(403, f"The '{CONTROL_SECRET_HEADER}' header does not hold the sandbox "
                       "profile's push secret.")
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        return _refuse(400, "The body is not JSON.")
    form = SimulateChangesForm(body if isinstance(body, dict) else {})
    if not form.is_valid():
        return _refuse(400, "count: " + " ".join(form.errors.get("count", ["is required."])))
    try:
        result = demo.simulate_changes(form.cleaned_data["count"])
    except demo.NothingPublished as error:
        return _refuse(409, f"{error} Open {initialize_url()} and click Initialize.")
    return JsonResponse(result.as_dict())


def _refuse(status: int, error: str) -> JsonResponse:
    return JsonResponse({"error": error}, status=status)
