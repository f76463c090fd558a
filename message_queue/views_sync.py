"""The Loads & reconciliation screens: initial loads and catch-ups with live progress (cancel,
resume), the scheduled catch-up's settings, and the reconciliation report with its
corrections. Viewers see everything; starting, cancelling and fixing need `manage`."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from connector.roles import can_manage
from message_queue import pull, reconcile
from message_queue.models import Entity, LoadRun, PullSettings, ReconcileDifference, ReconcileRun
from setup_params.models import DEFAULT_PROFILE, Profile

RUNS_SHOWN = 20
DIFFERENCES_SHOWN = 500
# The screens ask for progress this often while a run or a report is under way.
SYNC_POLL_MILLISECONDS = 1000


class PullSettingsForm(forms.ModelForm):
    class Meta:
        model = PullSettings
        fields = ["tracking", "interval_minutes"]


def _profile(request: HttpRequest) -> Profile:
    name = request.GET.get("profile") or DEFAULT_PROFILE
    return get_object_or_404(Profile.objects.select_related("acumatica_settings"), name=name)


def _actor(request: HttpRequest) -> str:
    return request.user.get_username()


def _back(name: str, profile: Profile) -> HttpResponse:
    return redirect(f"{reverse(name)}?profile={profile.name}")


# --- loads and catch-up ----------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def sync(request: HttpRequest) -> HttpResponse:
    profile = _profile(request)
    settings = pull.pull_settings(profile)
    form = PullSettingsForm(instance=settings)
    if request.method == "POST":
        if not can_manage(request.user):
            raise PermissionDenied("Starting or changing loads needs the manage permission.")
        form = act_on_runs(request, profile, settings)
        if form is None:
            return _back("sync", profile)
    pull.abandon_stale_runs(profile)
    return render(request, "message_queue/sync.html", {
        "profile": profile,
        "profiles": Profile.objects.values_list("name", flat=True),
        "form": form,
        "pull_settings": settings,
        "acumatica": profile.acumatica_settings,
        "runs_status": runs_status(profile),
        "entities": Entity.choices,
        "report": ReconcileRun.objects.filter(profile=profile).order_by("-created_at").first(),
        "poll_ms": SYNC_POLL_MILLISECONDS,
        "State": Profile.State,
    })


@require_GET
@never_cache
def sync_runs(request: HttpRequest) -> JsonResponse:
    """The profile's recent runs with their progress, for the screen's progress bars."""
    return JsonResponse(runs_status(_profile(request)))


def act_on_runs(request: HttpRequest, profile: Profile, settings: PullSettings):
    """Do the posted action; None when done (its outcome is a message), else the settings
    form with its errors."""
    action = request.POST.get("action")
    try:
        if action == "load":
            choice = request.POST.get("entity", "all")
            entities = Entity.values if choice == "all" else [choice]
            if not set(entities) <= set(Entity.values):
                messages.error(request, "Choose Pricing, Inventory or both.")
                return None
            runs = pull.start_loads(profile, entities, started_by=_actor(request))
            names = " and ".join(run.get_entity_display() for run in runs)
            messages.info(request, f"Initial load of {names} started for profile '{profile}'.")
        elif action == "catch_up":
            runs = pull.queue_catch_up_since(profile, None, started_by=_actor(request))
            if runs:
                messages.info(request, f"Catch-up started for profile '{profile}'.")
            else:
                messages.warning(request, "Nothing started: every inquiry is being read.")
        elif action in ("cancel", "resume"):
            run = get_object_or_404(LoadRun, pk=request.POST.get("run"), profile=profile)
            if action == "cancel":
                run = pull.cancel(run)
                messages.info(request, f"Run {run.pk} ({run.get_entity_display()}) "
                              + ("is cancelled." if run.finished else
                                 "stops after the page it is reading."))
            else:
                pull.resume(run, started_by=_actor(request))
                messages.info(request, f"Run {run.pk} ({run.get_entity_display()}) resumes at "
                              f"row {run.next_skip:,}.")
        elif action == "settings":
            form = PullSettingsForm(request.POST, instance=settings)
            if not form.is_valid():
                return form
            form.save()
            messages.success(request, "Catch-up settings saved.")
        else:
            messages.error(request, "Unknown action.")
    except pull.LoadError as error:
        messages.error(request, str(error))
    return None


def runs_status(profile: Profile) -> dict:
    """Loads, and the catch-ups that read something, failed or are under way: a scheduled
    catch-up that found nothing new only moves the watermark (shown above the list)."""
    shown = Q(kind=LoadRun.Kind.LOAD) | Q(read__gt=0) | ~Q(status=LoadRun.Status.SUCCEEDED)
    runs = LoadRun.objects.for_profile(profile).filter(shown).order_by("-created_at", "-id")
    runs = runs[:RUNS_SHOWN]
    now = timezone.now()
    return {"profile": profile.name, "runs": [run_status(run, now) for run in runs]}


def run_status(run: LoadRun, now=None) -> dict:
    rate = run.rate(now)
    seconds_left = run.seconds_left(now)
    return {
        "id": run.pk,
        "entity": run.entity,
        "entity_display": run.get_entity_display(),
        "kind": run.kind,
        "kind_display": run.get_kind_display(),
        "status": run.status,
        "status_display": run.get_status_display(),
        "finished": run.finished,
        "resumable": run.resumable,
        "cancel_requested": run.cancel_requested,
        "read": run.read,
        "total": run.total,
        "percent": None if run.percent() is None else round(run.percent(), 1),
        "keys_changed": run.keys_changed,
        "rate": None if rate is None else round(rate, 1),
        "seconds_left": None if seconds_left is None else round(seconds_left),
        "since": run.since.isoformat() if run.since else None,
        "started_by": run.started_by,
        "created_at": run.created_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "error": run.error,
    }


# --- reconciliation --------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def reconcile_report(request: HttpRequest) -> HttpResponse:
    profile = _profile(request)
    if request.method == "POST":
        if not can_manage(request.user):
            raise PermissionDenied("Running the report or fixing needs the manage permission.")
        act_on_report(request, profile)
        return _back("reconcile", profile)
    report = ReconcileRun.objects.filter(profile=profile).order_by("-created_at").first()
    differences = report.differences.all() if report else ReconcileDifference.objects.none()
    return render(request, "message_queue/reconcile.html", {
        "profile": profile,
        "profiles": Profile.objects.values_list("name", flat=True),
        "report": report,
        "differences": differences[:DIFFERENCES_SHOWN],
        "shown_limit": DIFFERENCES_SHOWN,
        "open_count": differences.filter(fixed_at__isnull=True).count() if report else 0,
        "report_status": report_status(report),
        "poll_ms": SYNC_POLL_MILLISECONDS,
        "Kind": ReconcileDifference.Kind,
        "State": Profile.State,
    })


@require_GET
@never_cache
def reconcile_status(request: HttpRequest) -> JsonResponse:
    profile = _profile(request)
    report = ReconcileRun.objects.filter(profile=profile).order_by("-created_at").first()
    return JsonResponse({"profile": profile.name, "report": report_status(report)})


def report_status(report: ReconcileRun | None) -> dict | None:
    if report is None:
        return None
    return {
        "id": report.pk,
        "status": report.status,
        "status_display": report.get_status_display(),
        "finished": report.finished,
        "differences_found": report.differences_found,
        "error": report.error,
    }


def act_on_report(request: HttpRequest, profile: Profile) -> None:
    action = request.POST.get("action")
    if action == "run":
        try:
            run = reconcile.create_report(profile, sku_prefix=request.POST.get("sku_prefix", ""),
                                          started_by=_actor(request))
        except reconcile.ReconcileError as error:
            messages.error(request, str(error))
            return
        reconcile.start(run)
        messages.info(request, "The reconciliation report is running; it shows here when done.")
        return
    report = get_object_or_404(ReconcileRun, pk=request.POST.get("report"), profile=profile)
    if action == "fix":
        ids = [int(value) for value in request.POST.getlist("difference") if value.isdigit()]
        if not ids:
            messages.error(request, "Select the differences to fix.")
            return
        result = reconcile.fix(report, ids, actor=_actor(request))
    elif action == "fix_all":
        result = reconcile.fix(report, actor=_actor(request))
    else:
        messages.error(request, "Unknown action.")
        return
    sending = "" if profile.state == Profile.State.ACTIVE else (
        f" They are sent when profile '{profile}' is active."
    )
    (messages.success if result.queued else messages.warning)(
        request, f"{result.summary()}{sending}"
    )
