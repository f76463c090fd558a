"""Alerts (issue 7): each condition is e-mailed and posted once when it is raised and once when
it clears, never again while it holds, and listed on the audit log.

The webhook is a real HTTP server on a free port; e-mail goes to Django's locmem outbox, and
through a real SMTP conversation with a small mail sink on a free port.
"""

from __future__ import annotations

import email
import json
import socket
import socketserver
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from django.conf import settings as django_settings
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from connector.alerts import evaluate_alerts, note_login_limit
from connector.models import AlertSettings, AlertState, AuditEntry, Heartbeat, ProvisioningRun
from message_queue.models import HourlyStats, Message, OutageGuard, Status
from sandbox.magento import DEFAULT_TOKEN
from sandbox.server import serve
from setup_params.models import Profile, create_profile, get_profile
from tests.message_queue.queue_rows import make_message

pytestmark = pytest.mark.django_db

RECIPIENTS = ["oncall@example.com", "ops@example.com"]
EVERY_20_SECONDS = [timedelta(seconds=0), timedelta(seconds=20), timedelta(seconds=40)]


# --- a webhook receiver and a mail server -----------------------------------------------------


class WebhookReceiver:
    """A paging service's webhook: keeps every POST, answers the statuses queued, then 200."""

    def __init__(self) -> None:
        self.url = ""
        self.posts: list[dict] = []
        self.answers: list[int] = []
        self._lock = threading.Lock()

    def handle(self, method: str, path: str, headers: dict, body: bytes):
        with self._lock:
            self.posts.append(json.loads(body))
            status = self.answers.pop(0) if self.answers else 200
        return status, {"Content-Type": "text/plain"}, b"thanks"

    def states(self) -> list[str]:
        return [post["state"] for post in self.posts]


class SMTPSink(socketserver.ThreadingTCPServer):
    """A mail server that accepts every message and keeps (envelope recipients, message)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), SMTPConversation)
        self.received: list[tuple[list[str], email.message.Message]] = []

    @property
    def port(self) -> int:
        return self.server_address[1]


class SMTPConversation(socketserver.StreamRequestHandler):
    """Just enough of RFC 5321 for smtplib: EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT."""

    server: SMTPSink

    def reply(self, line: str) -> None:
        self.wfile.write(f"{line}\r\n".encode())

    def handle(self) -> None:
        self.reply("220 sink.test ESMTP")
        recipients: list[str] = []
        while line := self.rfile.readline():
            verb = line[:4].decode("ascii", "replace").upper()
            if verb in ("EHLO", "HELO"):
                self.reply("250 sink.test")
            elif verb == "MAIL":
                recipients = []
                self.reply("250 OK")
            elif verb == "RCPT":
                recipients.append(line.decode().split(":", 1)[1].strip().strip("<>"))
                self.reply("250 OK")
            elif verb == "DATA":
                self.reply("354 End data with <CR><LF>.<CR><LF>")
                lines = []
                while (data := self.rfile.readline()) not in (b".\r\n", b""):
                    lines.append(data[1:] if data.startswith(b"..") else data)  # dot-stuffing
                self.server.received.append((recipients, email.message_from_bytes(b"".join(lines))))
                self.reply("250 OK queued")
            elif verb == "QUIT":
                self.reply("221 Bye")
                return
            else:  # RSET, NOOP
                self.reply("250 OK")


def closed_port() -> int:
    """A port nothing listens on: connecting to it is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def webhook():
    receiver = WebhookReceiver()
    with serve(receiver) as base_url:
        receiver.url = f"{base_url}/hooks/connector"
        yield receiver


@pytest.fixture
def smtp_sink(settings):
    """A real SMTP server on a free port, and the connector's mail settings pointing at it."""
    sink = SMTPSink()
    thread = threading.Thread(target=sink.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = sink.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    yield sink
    sink.shutdown()
    sink.server_close()
    thread.join(timeout=5)


@pytest.fixture
def alert_settings(profile, webhook) -> AlertSettings:
    return AlertSettings.objects.create(
        profile=profile, email_recipients="ops@example.com, oncall@example.com",
        webhook_url=webhook.url,
    )


@pytest.fixture
def start() -> datetime:
    """Half past the hour, so that a minute of evaluations stays inside one hour's totals."""
    return timezone.now().replace(minute=30, second=0, microsecond=0)


def evaluate_every_20_seconds(from_time: datetime) -> list[list]:
    return [evaluate_alerts(now=from_time + offset) for offset in EVERY_20_SECONDS]


def trip_outage_guard(profile: Profile, at: datetime, error: str = "HTTP 503: Service Unavailable"):
    OutageGuard.objects.update_or_create(
        profile=profile, entity="price",
        defaults={"tripped": True, "tripped_at": at, "last_error": error},
    )


# --- every condition: raised once, cleared once ----------------------------------------------


@dataclass
class Case:
    condition: str
    instance_wide: bool
    break_: Callable[[Profile, datetime], object]
    fix: Callable[[Profile, datetime], object]
    fixed_after: timedelta
    says: str


def nothing(profile: Profile, at: datetime) -> None:
    """The condition ends with time alone."""


def fail_ten_times_this_hour(profile: Profile, at: datetime) -> None:
    HourlyStats.objects.create(profile=profile, entity="inventory",
                               hour=at.replace(minute=0), calls=12, failed=7, failed_calls=3)


def leave_a_message_pending_20_minutes(profile: Profile, at: datetime) -> None:
    make_message(profile, sku="AALEGO500", next_attempt_at=at - timedelta(minutes=20))


def send_the_pending_message(profile: Profile, at: datetime) -> None:
    Message.objects.filter(status=Status.PENDING).update(status=Status.SENT, sent_at=at)


def fail_a_publish_on_the_login_limit(profile: Profile, at: datetime) -> None:
    ProvisioningRun.objects.create(
        profile=profile, action="initialize", status="failed", started_by="cli", finished_at=at,
        progress="Initialize failed: Acumatica refused the sign-in (HTTP 500: API Login Limit)",
    )


def heartbeat_at(process: str, age: timedelta) -> Callable[[Profile, datetime], object]:
    def beat(profile: Profile, at: datetime) -> None:
        Heartbeat.objects.update_or_create(process=process, defaults={"seen_at": at - age})

    return beat


CASES = [
    pytest.param(
        Case("outage_guard:price", False, trip_outage_guard,
             lambda profile, at: OutageGuard.objects.update(tripped=False),
             timedelta(minutes=3), "HTTP 503: Service Unavailable"),
        id="outage-guard",
    ),
    pytest.param(
        Case("failures_per_hour", False, fail_ten_times_this_hour, nothing,
             timedelta(hours=2), "10 failures in the last hour"),
        id="failures-per-hour",
    ),
    pytest.param(
        Case("oldest_pending:price", False, leave_a_message_pending_20_minutes,
             send_the_pending_message, timedelta(minutes=3), "(SKU AALEGO500) has waited 20 min"),
        id="oldest-pending",
    ),
    pytest.param(
        Case("login_limit", False,
             lambda profile, at: note_login_limit(profile, "HTTP 429: API Login Limit", now=at),
             nothing, timedelta(minutes=11), "HTTP 429: API Login Limit"),
        id="login-limit-noted",
    ),
    pytest.param(
        Case("login_limit", False, fail_a_publish_on_the_login_limit, nothing,
             timedelta(minutes=11), "HTTP 500: API Login Limit"),
        id="login-limit-in-a-publish",
    ),
    pytest.param(
        Case("worker_heartbeat", True, heartbeat_at("worker", timedelta(minutes=5)),
             heartbeat_at("worker", timedelta(0)), timedelta(minutes=3),
             "The worker has not checked in for 300 s"),
        id="worker-heartbeat",
    ),
    pytest.param(
        Case("beat_heartbeat", True, heartbeat_at("beat", timedelta(minutes=5)),
             heartbeat_at("beat", timedelta(0)), timedelta(minutes=3),
             "The beat has not checked in for 300 s"),
        id="beat-heartbeat",
    ),
]


@pytest.mark.parametrize("case", CASES)
def test_each_condition_is_alerted_once_when_raised_and_once_when_cleared(
    case, profile, alert_settings, webhook, start, viewer_client
):
    case.break_(profile, start)
    raised = evaluate_every_20_seconds(start)

    fixed_at = start + case.fixed_after
    case.fix(profile, fixed_at)
    cleared = evaluate_every_20_seconds(fixed_at)

    # The evaluations that changed something say so; the ones in between send nothing.
    assert [[alert.state for alert in changes] for changes in raised] == [["raised"], [], []]
    assert [[alert.state for alert in changes] for changes in cleared] == [["cleared"], [], []]
    profile_name = None if case.instance_wide else "default"
    assert [(post["profile"], post["condition"], post["state"], post["at"])
            for post in webhook.posts] == [
        (profile_name, case.condition, "raised", start.isoformat()),
        (profile_name, case.condition, "cleared", fixed_at.isoformat()),
    ]
    assert case.says in webhook.posts[0]["message"]
    assert [sorted(message.to) for message in mail.outbox] == [RECIPIENTS, RECIPIENTS]
    assert mail.outbox[0].subject.startswith("[Connector] RAISED: ")
    assert mail.outbox[1].subject.startswith("[Connector] CLEARED: ")
    assert case.says in mail.outbox[0].body
    audit = viewer_client.get(reverse("audit_log")).context["page"].object_list
    assert [(entry.get_kind_display(), entry.profile and entry.profile.name)
            for entry in audit] == [("Alert", profile_name), ("Alert", profile_name)]
    assert ": cleared. " in audit[0].detail and ": raised. " in audit[1].detail
    assert case.says in audit[1].detail


def test_the_audit_page_shows_alerts_to_a_viewer(profile, start, viewer_client):
    trip_outage_guard(profile, start)
    evaluate_alerts(now=start)

    page = viewer_client.get(reverse("audit_log"), {"kind": "alert"})

    assert page.status_code == 200
    text = page.content.decode()
    assert "Outage guard tripped (Pricing): raised." in text
    assert "HTTP 503: Service Unavailable" in text


# --- delivery ---------------------------------------------------------------------------------


def test_a_webhook_answering_an_error_is_posted_again_at_each_evaluation_until_a_2xx(
    profile, alert_settings, webhook, start
):
    webhook.answers = [500, 503]
    trip_outage_guard(profile, start)

    for minute in range(5):
        evaluate_alerts(now=start + timedelta(minutes=minute))

    assert webhook.states() == ["raised", "raised", "raised"]
    assert {post["at"] for post in webhook.posts} == {start.isoformat()}
    assert len(mail.outbox) == 1  # the e-mail went at once and is not sent again
    assert AuditEntry.objects.filter(kind=AuditEntry.Kind.ALERT).count() == 1


def test_an_unreachable_webhook_is_tried_again_once_it_answers(
    profile, alert_settings, webhook, start
):
    alert_settings.webhook_url = f"http://127.0.0.1:{closed_port()}/hook"
    alert_settings.save()
    trip_outage_guard(profile, start)

    evaluate_alerts(now=start)
    assert AlertState.objects.get(condition="outage_guard:price").webhooks_pending == [
        alert_settings.pk
    ]
    alert_settings.webhook_url = webhook.url
    alert_settings.save()
    evaluate_alerts(now=start + timedelta(minutes=1))
    evaluate_alerts(now=start + timedelta(minutes=2))

    assert webhook.states() == ["raised"]
    assert AlertState.objects.get(condition="outage_guard:price").webhooks_pending == []


def test_a_change_that_clears_before_its_raise_was_delivered_delivers_the_clear(
    profile, alert_settings, webhook, start
):
    webhook.answers = [500]
    trip_outage_guard(profile, start)
    evaluate_alerts(now=start)
    OutageGuard.objects.update(tripped=False)

    evaluate_alerts(now=start + timedelta(minutes=1))
    evaluate_alerts(now=start + timedelta(minutes=2))

    assert webhook.states() == ["raised", "cleared"]


def test_alert_email_goes_through_a_real_smtp_server(profile, alert_settings, smtp_sink, start):
    trip_outage_guard(profile, start)

    evaluate_alerts(now=start)
    evaluate_alerts(now=start + timedelta(minutes=1))

    assert len(smtp_sink.received) == 1
    recipients, message = smtp_sink.received[0]
    assert sorted(recipients) == RECIPIENTS
    assert message["Subject"] == (
        "[Connector] RAISED: Outage guard tripped (Pricing) (profile default)"
    )
    assert message["From"] == django_settings.DEFAULT_FROM_EMAIL
    body = message.get_payload(decode=True).decode()
    assert "HTTP 503: Service Unavailable" in body
    assert "Condition: outage_guard:price" in body
    assert reverse("audit_log") in body


def test_an_email_the_mail_server_refused_is_sent_at_the_next_evaluation(
    profile, alert_settings, smtp_sink, webhook, start, settings
):
    settings.EMAIL_PORT = closed_port()
    trip_outage_guard(profile, start)
    evaluate_alerts(now=start)
    assert smtp_sink.received == []

    settings.EMAIL_PORT = smtp_sink.port
    evaluate_alerts(now=start + timedelta(minutes=1))
    evaluate_alerts(now=start + timedelta(minutes=2))

    assert len(smtp_sink.received) == 1
    assert webhook.states() == ["raised"]  # delivered the first time, not posted again


def test_delivery_is_given_up_after_a_day(profile, alert_settings, webhook, start):
    webhook.answers = [500]
    trip_outage_guard(profile, start)
    evaluate_alerts(now=start)

    evaluate_alerts(now=start + timedelta(days=1, minutes=1))
    evaluate_alerts(now=start + timedelta(days=1, minutes=2))

    assert webhook.states() == ["raised"]
    assert AlertState.objects.get(condition="outage_guard:price").webhooks_pending == []


# --- what the alerts say, and to whom ---------------------------------------------------------


def test_no_secret_reaches_an_alert(profile, alert_settings, webhook, start):
    profile.acumatica_settings.password = "Acumatica-Pa55word"
    profile.acumatica_settings.save()
    trip_outage_guard(
        profile, start,
        error=f"HTTP 401: token {DEFAULT_TOKEN} rejected; push secret {profile.push_secret}",
    )
    note_login_limit(profile, "login as admin/Acumatica-Pa55word: API Login Limit", now=start)

    evaluate_alerts(now=start)

    secrets = [DEFAULT_TOKEN, profile.push_secret, "Acumatica-Pa55word"]
    said = [post["message"] for post in webhook.posts]
    said += [message.body for message in mail.outbox]
    said += list(AuditEntry.objects.values_list("detail", flat=True))
    said += list(AlertState.objects.values_list("last_message", flat=True))
    assert len(said) == 8  # outage and login limit, each posted, e-mailed, audited and kept
    for text in said:
        assert "••••" in text
        for secret in secrets:
            assert secret not in text


def test_each_profile_s_alerts_go_to_its_own_recipients_and_the_instance_s_to_all(
    profile, alert_settings, webhook, start
):
    east = create_profile("east")
    east_webhook = WebhookReceiver()
    with serve(east_webhook) as east_url:
        AlertSettings.objects.create(profile=east, email_recipients="east@example.com",
                                     webhook_url=east_url)
        trip_outage_guard(east, start)
        Heartbeat.objects.create(process="worker", seen_at=start - timedelta(minutes=5))

        evaluate_alerts(now=start)

    assert [(post["profile"], post["condition"]) for post in webhook.posts] == [
        (None, "worker_heartbeat")
    ]
    assert {(post["profile"], post["condition"]) for post in east_webhook.posts} == {
        ("east", "outage_guard:price"), (None, "worker_heartbeat")
    }
    recipients = sorted((message.subject.split(": ")[1], tuple(sorted(message.to)))
                        for message in mail.outbox)
    assert recipients == [
        ("Outage guard tripped (Pricing) (profile east)", ("east@example.com",)),
        ("Worker heartbeat stopped (the whole connector)",
         ("east@example.com", "oncall@example.com", "ops@example.com")),
    ]


def test_a_profile_without_alert_settings_is_audited_with_the_default_thresholds(profile, start):
    HourlyStats.objects.create(profile=profile, entity="price", hour=start.replace(minute=0),
                               failed=9)
    assert evaluate_alerts(now=start) == []  # 9 < the default 10

    HourlyStats.objects.update(failed_calls=1)
    (alert,) = evaluate_alerts(now=start + timedelta(minutes=1))

    assert (alert.condition, alert.state) == ("failures_per_hour", "raised")
    assert AuditEntry.objects.filter(kind=AuditEntry.Kind.ALERT).count() == 1
    assert mail.outbox == []


def test_the_previous_hour_s_failures_count_for_the_part_still_in_the_last_hour(
    profile, alert_settings, start
):
    HourlyStats.objects.create(profile=profile, entity="price",
                               hour=start.replace(minute=0) - timedelta(hours=1), failed=20)

    at_half_past = evaluate_alerts(now=start)  # 30 of its 60 minutes still count: 10
    at_quarter_to = evaluate_alerts(now=start + timedelta(minutes=15))  # 15 minutes: 5

    assert [(alert.condition, alert.state) for alert in at_half_past + at_quarter_to] == [
        ("failures_per_hour", "raised"), ("failures_per_hour", "cleared")
    ]


@pytest.mark.parametrize("state", [Profile.State.NEW, Profile.State.PAUSED, Profile.State.STOPPED])
def test_messages_waiting_on_a_profile_that_does_not_send_raise_no_alert(
    profile, alert_settings, webhook, start, state
):
    Profile.objects.filter(pk=profile.pk).update(state=state)
    leave_a_message_pending_20_minutes(profile, start)

    assert evaluate_alerts(now=start) == []
    assert webhook.posts == []


def test_the_oldest_pending_threshold_is_the_profile_s(profile, alert_settings, start):
    alert_settings.oldest_pending_minutes = 30
    alert_settings.save()
    leave_a_message_pending_20_minutes(profile, start)

    assert evaluate_alerts(now=start) == []
    (alert,) = evaluate_alerts(now=start + timedelta(minutes=11))
    assert alert.condition == "oldest_pending:price"


def test_a_heartbeat_never_seen_raises_no_alert(profile, start):
    Heartbeat.objects.all().delete()

    assert evaluate_alerts(now=start) == []


# --- how it runs ------------------------------------------------------------------------------


def test_beat_evaluates_alerts_once_a_minute_without_needing_a_worker(
    profile, alert_settings, webhook, monkeypatch
):
    from connector import beat

    clock = [1000.0]
    monkeypatch.setattr(beat.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(beat.DatabaseScheduler, "tick", lambda self, *a, **k: 5.0)
    monkeypatch.setattr(beat, "close_old_connections", lambda: None)  # the test's transaction
    scheduler = beat.HeartbeatScheduler.__new__(beat.HeartbeatScheduler)

    trip_outage_guard(profile, timezone.now())
    for clock[0] in (1000.0, 1010.0, 1061.0):
        scheduler.tick()

    assert webhook.states() == ["raised"]


def test_alert_settings_are_edited_in_the_admin(client, make_user, profile):
    client.force_login(make_user("admin", is_staff=True, is_superuser=True))
    add = reverse("admin:connector_alertsettings_add")
    form = {"profile": profile.pk, "email_recipients": "ops@example.com, not an address",
            "webhook_url": "https://hooks.example.com/connector",
            "failures_per_hour_threshold": 10, "oldest_pending_minutes": 15}

    refused = client.post(add, form)
    form["email_recipients"] = "ops@example.com; oncall@example.com"
    saved = client.post(add, form)

    assert "is not an e-mail address" in refused.content.decode()
    assert saved.status_code == 302
    assert get_profile().alert_settings.recipients() == ["ops@example.com", "oncall@example.com"]
    listing = client.get(reverse("admin:connector_alertsettings_changelist")).content.decode()
    assert "hooks.example.com" not in listing  # the URL may carry a token: not listed
    audited = AuditEntry.objects.get(kind=AuditEntry.Kind.SETTINGS_CHANGED)
    assert "webhook_url" in audited.fields and "hooks.example.com" not in audited.detail


@pytest.mark.django_db
def test_the_evaluate_alerts_command_raises_a_stale_worker_alert_for_cron(settings):
    from io import StringIO

    from django.core.management import call_command

    from connector.models import Heartbeat

    Heartbeat.objects.create(process="worker", seen_at=timezone.now() - timedelta(hours=1))
    Heartbeat.beat("beat")
    out = StringIO()
    call_command("evaluate_alerts", stdout=out)
    assert "raised: all profiles" in out.getvalue()
    assert "1 alert(s) raised or cleared." in out.getvalue()
