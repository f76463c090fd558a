"""Secrets never leak (issue 7, security 1).

The Magento token, the Acumatica password and client secret, the OAuth tokens and the push
secret (and a wrong token or password someone typed) appear on no screen, admin page, log
line, exception text, stored row (attempts, audit entries, messages, …) or `connector_config
show` without `--reveal`. The flow below runs the whole sandbox story with every logger at
DEBUG (SQL included): settings typed on the screens, Test Connection of both systems,
Initialize publishing to the Acumatica simulator, push notifications through the receiver,
the processors sending to Magento, OAuth sign-in and refresh, and failures whose answers
echo the secrets back (a proxy page quoting the Authorization header, an error quoting the
sign-in body, a publish log quoting the push header).

By design, one screen shows the push secret: Initialize / Deactivate, to a manager (the
operator pastes it into Acumatica), and the package to import by hand holds it (manager
only). Viewers get neither.
"""

from __future__ import annotations

import io
import json
import logging
import re
import traceback
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest
import requests
from django.contrib import admin
from django.contrib.sessions.backends.db import SessionStore
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from connector import provisioning
from connector.acumatica import AcumaticaError
from connector.acumatica_connection import client_for
from connector.http_failures import MESSAGE_EXCERPT_CHARS
from connector.magento import MagentoClient, MagentoError
from connector.models import AuditEntry, ProvisioningRun
from message_queue.models import Attempt, Message
from message_queue.processing import run_pass
from sandbox.acumatica import AcumaticaSimulator
from sandbox.magento import MagentoSimulator
from sandbox.server import serve
from setup_params.models import Profile, get_profile

pytestmark = pytest.mark.django_db

MAGENTO_TOKEN = "mgto-4b1e8f2a9c7d53e0"
ACUMATICA_PASSWORD = "acpw-7e3c1a9f5b2d86a4"
CLIENT_SECRET = "acsc-2f8d6b0e4a1c97b3"
PUSH_SECRET = "push-9a5c3e7b1d0f42c8"
WRONG_TOKEN = "wrong-mgto-6d2a8c4e0b9f"
WRONG_PASSWORD = "wrong-acpw-1c7e5a3b9d2f"
WRONG_PUSH_SECRET = "wrong-push-3e9b7d1f5a0c"
TYPED_SECRETS = {
    "Magento token": MAGENTO_TOKEN,
    "Acumatica password": ACUMATICA_PASSWORD,
    "client secret": CLIENT_SECRET,
    "push secret": PUSH_SECRET,
    "wrong token typed": WRONG_TOKEN,
    "wrong password typed": WRONG_PASSWORD,
    "wrong push secret sent": WRONG_PUSH_SECRET,
}
# A leak of part of a secret counts: any run of this many of its characters.
FRAGMENT_CHARS = 10
BASE_URL = "http://testserver"
CALLBACK_PATH = "/acumatica/oauth/callback/"
SKUS = {"AALEGO500": 49.99, "AACOMPUT01": 999.0, "AAPOWERAID": 2.5, "CONGOLFCL1": 425.0}
# By design (see the module's docstring).
LIFECYCLE = "/lifecycle/"
PACKAGE = "/lifecycle/package.zip"


# --- simulators that quote secrets back ----------------------------------------------------


class EchoingMagento(MagentoSimulator):
    """Magento behind a proxy whose error page quotes the request's Authorization header.

    `echo = "whole"` quotes it early in the page; `echo = "cut"` puts it where the connector
    cuts the page's text to an excerpt, so that only the token's first characters would be
    left to leak if the excerpt were cut before the token was redacted.
    """

    echo: str | None = None

    def handle(self, method, path, headers, body):
        if self.echo is None:
            return super().handle(method, path, headers, body)
        authorization = {name.lower(): value for name, value in headers.items()}.get(
            "authorization", ""
        )
        prefix, quoted = "Bad gateway. Request headers:", f"Authorization: {authorization}"
        # "cut": the token starts 15 characters before the excerpt ends.
        before_token = MESSAGE_EXCERPT_CHARS - 15 - len(prefix) - len(" Authorization: Bearer ")
        padding = "" if self.echo == "whole" else "x" * before_token
        page = f"<html><body><p>{prefix} {padding} {quoted}</p></body></html>"
        return 502, {"Content-Type": "text/html"}, page.encode()


class EchoingAcumatica(AcumaticaSimulator):
    """Acumatica whose refused sign-in quotes the request body (with the password)."""

    echo_login = False

    def handle(self, method, path, headers, body):
        if self.echo_login and path.startswith("/entity/auth/login"):
            answer = {"message": f"Login refused for {body.decode()}"}
            return 500, {"Content-Type": "application/json"}, json.dumps(answer).encode()
        return super().handle(method, path, headers, body)


def post_to_receiver(url: str, body: bytes, headers: dict[str, str]) -> int:
    """How the simulated Acumatica delivers a push notification: to the real receiver."""
    extra = {name: value for name, value in headers.items() if name.lower() != "content-type"}
    response = Client().generic(
        "POST", urlsplit(url).path, body, content_type="application/json", headers=extra
    )
    return response.status_code


@pytest.fixture
def magento():
    simulator = EchoingMagento(token=MAGENTO_TOKEN)
    for sku, price in SKUS.items():
        simulator.add_product(sku, price, {"default": 10})
    with serve(simulator) as url:
        simulator.url = url
        yield simulator


@pytest.fixture
def acumatica():
    simulator = EchoingAcumatica(
        api_seats=2, password=ACUMATICA_PASSWORD, client_secret=CLIENT_SECRET,
        post=post_to_receiver,
    )
    with serve(simulator) as url:
        simulator.url = url
        yield simulator


# --- every log line, at DEBUG ----------------------------------------------------------------


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))  # with the traceback, when there is one


@pytest.fixture
def debug_logs() -> Iterator[list[str]]:
    """Every logger at DEBUG into one list, SQL statements and their parameters included."""
    handler = Collect()
    root = logging.getLogger()
    loggers = [root] + [
        logger for logger in logging.root.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    saved = [(logger, logger.level, logger.disabled) for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
        logger.disabled = False
        if not logger.propagate:
            logger.addHandler(handler)
    root.addHandler(handler)
    connection.force_debug_cursor = True
    try:
        yield handler.lines
    finally:
        connection.force_debug_cursor = False
        for logger, level, disabled in saved:
            logger.setLevel(level)
            logger.disabled = disabled
            logger.removeHandler(handler)


# --- the flow --------------------------------------------------------------------------------


@dataclass
class Flow:
    secrets: dict[str, str]
    logs: list[str]
    pages: list[tuple[str, str]] = field(default_factory=list)  # (what, text)
    texts: list[tuple[str, str]] = field(default_factory=list)  # exceptions, command output
    revealed: str = ""


def setup_form(magento_url: str, action: str = "save", token: str = "", **changes) -> dict:
    data = {
        "action": action, "magento_url": magento_url, "store_code": "default",
        "price_store_id": "0", "source_code": "default", "use_msi": "msi",
        "magento_token": token, "magento_token_confirm": token, "timeout": "5",
        "threshold_count": "25", "batch_count": "20", "retry_count": "3",
        "check_process_time": "50", "process_sleep_time": "5", "senders": "1",
    }
    return {**data, **changes}


def acumatica_form(acumatica: AcumaticaSimulator, action: str = "save", **changes) -> dict:
    data = {
        "action": action, "acumatica_url": acumatica.url, "acumatica_endpoint": "Default",
        "acumatica_version": "24.200.001", "acumatica_tenant": acumatica.tenant,
        "acumatica_branch": "", "acumatica_auth": "cookie", "acumatica_username": "admin",
        "acumatica_password": "", "acumatica_client_id": acumatica.client_id,
        "acumatica_client_secret": "", "acumatica_scopes": "openid api offline_access",
        "acumatica_concurrency": "2", "acumatica_time_zone": "UTC",
        "acumatica_time_offset": "0", "acumatica_page_size": "500",
        "acumatica_batch_size": "2000", "acumatica_timeout": "5",
    }
    return {**data, **changes}


def body(response) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode(errors="replace")
    return response.content.decode(errors="replace")


def error_text(error: BaseException) -> str:
    return "".join(traceback.format_exception(error)) + repr(error) + repr(error.args)


def command_output(*arguments: str) -> str:
    stdout, stderr = io.StringIO(), io.StringIO()
    try:
        call_command(*arguments, stdout=stdout, stderr=stderr)
    except CommandError as error:
        stderr.write(str(error))
    return stdout.getvalue() + stderr.getvalue()


@pytest.fixture
def superuser_manager(make_user):
    """A manager who may also use every admin page."""
    return make_user("boss", role="manage", is_staff=True, is_superuser=True)


@pytest.fixture
def flow(client, superuser_manager, magento, acumatica, debug_logs, settings, monkeypatch):
    """The whole sandbox story, as a manager on the screens, every logger at DEBUG."""
    settings.CONNECTOR_BASE_URL = BASE_URL
    monkeypatch.setattr(provisioning, "PUBLISH_POLL_SECONDS", 0.01)
    monkeypatch.setattr(provisioning, "start", lambda run: provisioning.run_provisioning(run))
    client.force_login(superuser_manager)
    profile = get_profile()
    profile.push_secret = PUSH_SECRET
    profile.save(update_fields=["push_secret_encrypted"])
    result = Flow(secrets=dict(TYPED_SECRETS), logs=debug_logs)

    def keep(what: str, response):
        result.pages.append((what, body(response)))
        return response

    def show_messages(what: str) -> None:
        # Flash messages are shown by the next page: the audit log (never the lifecycle page).
        keep(f"messages after {what}", client.get("/audit/"))

    # Setup Parameters: an invalid form typed with the token, Test Connection with a wrong
    # and the right token, through a proxy that quotes the header, then save.
    keep("setup, invalid", client.post(
        "/setup/", setup_form(magento.url, token=MAGENTO_TOKEN, threshold_count="many")))
    keep("setup, wrong token", client.post(
        "/setup/", setup_form(magento.url, "test_connection", WRONG_TOKEN)))
    keep("setup, right token", client.post(
        "/setup/", setup_form(magento.url, "test_connection", MAGENTO_TOKEN)))
    for echo in ("whole", "cut"):
        magento.echo = echo
        keep(f"setup, proxy quoting ({echo})", client.post(
            "/setup/", setup_form(magento.url, "test_connection", MAGENTO_TOKEN)))
    magento.echo = None
    assert client.post("/setup/", setup_form(magento.url, token=MAGENTO_TOKEN)).status_code == 302
    show_messages("saving the Magento settings")

    # Acumatica Connection: Test Connection with a wrong and the right password, one whose
    # refusal quotes the sign-in body, then save (with the OAuth client for later).
    for what, password in (("wrong", WRONG_PASSWORD), ("right", ACUMATICA_PASSWORD)):
        keep(f"acumatica, {what} password", client.post("/acumatica/connection/", acumatica_form(
            acumatica, "test_connection", acumatica_password=password)))
    acumatica.echo_login = True
    keep("acumatica, refusal quoting the body", client.post(
        "/acumatica/connection/",
        acumatica_form(acumatica, "test_connection", acumatica_password=ACUMATICA_PASSWORD)))
    acumatica.echo_login = False
    saved = client.post("/acumatica/connection/", acumatica_form(
        acumatica, acumatica_password=ACUMATICA_PASSWORD, acumatica_client_secret=CLIENT_SECRET))
    assert saved.status_code == 302
    show_messages("saving the Acumatica settings")

    # Initialize: a publish whose log quotes the push header and the password fails; the
    # next one publishes the push notifications.
    acumatica.fail_next_publish([f"Header X-Connector-Secret: {PUSH_SECRET} is invalid.",
                                 f"User admin/{ACUMATICA_PASSWORD} may not publish."])
    client.post(LIFECYCLE, {"action": "initialize"})
    show_messages("a failed Initialize")
    assert ProvisioningRun.objects.first().status == ProvisioningRun.Status.FAILED
    client.post(LIFECYCLE, {"action": "initialize"})
    show_messages("Initialize")
    assert get_profile().state == Profile.State.ACTIVE
    # The screen that shows the push secret, by design: rendered while the logs are captured
    # (a template's DEBUG lines may quote its context), searched on its own further down.
    assert PUSH_SECRET in body(client.get(LIFECYCLE))

    # Push notifications through the receiver, then the processors send to Magento.
    deliveries = acumatica.change_price("AALEGO500", 51.5)
    deliveries += acumatica.change_stock("AALEGO500", "MAIN", 1500)
    assert [delivery.status for delivery in deliveries] == [200, 200]
    for headers in ({"X-Connector-Secret": WRONG_PUSH_SECRET}, {}):
        refused = Client().post(get_profile().push_path, b"{}", content_type="application/json",
                                headers=headers)
        keep("receiver refusing", refused)
    run_pass(get_profile(), "price")
    run_pass(get_profile(), "inventory")
    assert magento.price_of("AALEGO500") == 51.5
    assert magento.quantity_of("AALEGO500") == 1500

    # Failures: a proxy quoting the header (whole, then where the excerpt is cut), then a
    # token Magento no longer accepts (the outage guard trips).
    for sku, echo in (("AACOMPUT01", "whole"), ("AAPOWERAID", "cut")):
        magento.echo = echo
        acumatica.change_price(sku, 7.25)
        run_pass(get_profile(), "price")
    magento.echo = None
    magento.token = "rotated-in-magento"
    acumatica.change_price("CONGOLFCL1", 400.0)
    run_pass(get_profile(), "price")
    keep("setup, stored token refused", client.post(
        "/setup/", setup_form(magento.url, "test_connection")))
    magento.token = MAGENTO_TOKEN

    # OAuth 2.0: sign in, then Test Connection after Acumatica revoked the access token (the
    # connector refreshes it and stores the new pair).
    acumatica.register_redirect_uri(BASE_URL + CALLBACK_PATH)
    client.post("/acumatica/connection/", acumatica_form(acumatica, acumatica_auth="oauth2"))
    sign_in = client.post("/acumatica/oauth/sign-in/")
    answer = requests.get(sign_in["Location"], allow_redirects=False, timeout=5)
    back = urlsplit(answer.headers["Location"])
    keep("oauth callback", client.get(f"{back.path}?{back.query}", follow=True))
    stored = get_profile().acumatica_settings
    result.secrets["first access token"] = stored.access_token
    result.secrets["first refresh token"] = stored.refresh_token
    acumatica.revoke_access_tokens()
    keep("acumatica, oauth test", client.post("/acumatica/connection/", acumatica_form(
        acumatica, "test_connection", acumatica_auth="oauth2")))
    stored = get_profile().acumatica_settings
    assert stored.access_token != result.secrets["first access token"]
    result.secrets["access token"] = stored.access_token
    result.secrets["refresh token"] = stored.refresh_token

    # Exceptions raised straight from the clients.
    for token, echo in ((WRONG_TOKEN, None), (MAGENTO_TOKEN, "whole"), (MAGENTO_TOKEN, "cut")):
        magento.echo = echo
        with pytest.raises(MagentoError) as raised, MagentoClient(magento.url, token) as client_:
            client_.test_connection()
        result.texts.append((f"Magento error ({token}, {echo})", error_text(raised.value)))
    magento.echo = None
    acumatica.echo_login = True
    for password in (WRONG_PASSWORD, ACUMATICA_PASSWORD):
        with pytest.raises(AcumaticaError) as raised, client_for(
            get_profile(), auth="cookie", password=password
        ) as client_:
            client_.test_connection()
        result.texts.append(("Acumatica error", error_text(raised.value)))
    acumatica.echo_login = False

    # The commands.
    for arguments in (("connector_config", "show"), ("connector_config", "show", "--json"),
                      ("test_connection",), ("test_connection", "magento")):
        result.texts.append((" ".join(arguments), command_output(*arguments)))
    result.revealed = command_output("connector_config", "show", "--reveal")
    return result


# --- looking for them ------------------------------------------------------------------------


def fragments(secret: str) -> set[str]:
    if len(secret) <= FRAGMENT_CHARS:
        return {secret}
    return {secret[i: i + FRAGMENT_CHARS] for i in range(len(secret) - FRAGMENT_CHARS + 1)}


def leaks(places: Iterable[tuple[str, str]], secrets: dict[str, str],
          allowed: Iterable[str] = ()) -> list[str]:
    """'<secret> in <place>: …context…' for every secret (or part of one) found."""
    found = []
    wanted = {name: fragments(value) for name, value in secrets.items() if name not in allowed}
    for place, text in places:
        for name, parts in wanted.items():
            hit = next((part for part in parts if part in text), None)
            if hit is not None:
                at = text.index(hit)
                found.append(f"{name} in {place}: …{text[max(0, at - 80): at + 40]}…")
    return found


def walk(resolver: URLResolver, prefix: str = ""):
    for pattern in resolver.url_patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from walk(pattern, route)
        elif isinstance(pattern, URLPattern):
            yield route


NOT_PAGES = ("admin/", "sandbox/magento/", "sandbox/acumatica/", "sandbox/control/",
             "accounts/logout/", "acumatica/push/")


def screen_paths() -> list[str]:
    """Every page and JSON answer a browser may GET (the admin is walked on its own)."""
    message = Message.objects.order_by("pk").first()
    paths = []
    for route in walk(get_resolver()):
        if route.startswith(NOT_PAGES):
            continue
        path = route.replace("<int:pk>", str(message.pk)).replace("^", "").replace("$", "")
        paths.append("/" + re.sub(r"<[^>]+>", "x", path))  # a password-reset link, say
    failed_call = Attempt.objects.exclude(error="").first()
    return paths + ["/queue/messages/?status=failed", "/queue/failed/?error=HTTP",
                    f"/queue/messages/{failed_call.messages.first().pk}/"]


def admin_paths() -> list[str]:
    paths = ["/admin/"]
    for model in admin.site._registry:
        info = f"admin:{model._meta.app_label}_{model._meta.model_name}"
        paths += [reverse(f"{info}_changelist"), reverse(f"{info}_add")]
        for obj in model._default_manager.all()[:3]:
            paths += [reverse(f"{info}_{view}", args=[obj.pk])
                      for view in ("change", "history", "delete")]
    return paths


def stored_rows() -> Iterator[tuple[str, str]]:
    """Every row of every table, as text; sessions decoded."""
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            for row in cursor.fetchall():
                yield table, " | ".join(map(str, row))
    for session in SessionStore.get_model_class().objects.all():
        yield "session", json.dumps(SessionStore().decode(session.session_data))


# --- the tests -------------------------------------------------------------------------------


def test_the_flow_used_every_secret_and_reveal_shows_them(flow, magento, acumatica):
    """The searches below look for values that were really in use."""
    for name in ("Magento token", "Acumatica password", "client secret", "push secret"):
        assert flow.secrets[name] in flow.revealed, name
    assert any(push["header_value"] == PUSH_SECRET
               for push in acumatica.published_push_notifications())
    assert acumatica.count("/identity/connect/token") >= 2


def test_no_log_line_of_the_whole_flow_at_debug_holds_a_secret(flow):
    logs = "\n".join(flow.logs)
    assert "Push notification" in logs and "refused: wrong secret" in logs
    assert "DEBUG django.db.backends" in logs and "DEBUG urllib3.connectionpool" in logs
    assert "DEBUG django.template" in logs  # its lines quote a template's context
    assert "Outage guard tripped" in logs

    assert leaks([("the log", logs)], flow.secrets) == []


def test_no_stored_row_holds_a_secret(flow):
    attempts = list(Attempt.objects.exclude(error="").values_list("error", flat=True))
    assert any("HTTP 502" in error for error in attempts)
    assert any("refused the access token" in error for error in attempts)
    assert Message.objects.exclude(last_error="").exists()
    assert AuditEntry.objects.filter(kind=AuditEntry.Kind.SETTINGS_CHANGED).count() >= 3
    failed_run = ProvisioningRun.objects.filter(status=ProvisioningRun.Status.FAILED).get()
    assert "is invalid" in json.dumps(failed_run.log, ensure_ascii=False)

    assert leaks(stored_rows(), flow.secrets) == []


def test_no_page_shown_during_the_flow_holds_a_secret(flow):
    pages = dict(flow.pages)
    assert "Test Connection succeeded" in pages["setup, right token"]
    assert "HTTP 502" in pages["setup, proxy quoting (cut)"]
    assert "Signed in with Acumatica" in pages["oauth callback"]

    assert leaks(flow.pages, flow.secrets) == []


def test_no_exception_text_or_command_output_holds_a_secret(flow):
    assert len(flow.texts) == 9
    assert "•••• set" in dict(flow.texts)["connector_config show"]

    assert leaks(flow.texts, flow.secrets) == []


@pytest.mark.parametrize("role", ["manager", "viewer"])
def test_no_screen_holds_a_secret(flow, client, make_user, role):
    client.force_login(make_user(f"another-{role}", role="manage" if role == "manager"
                                 else "viewer"))
    shown = []
    for path in screen_paths():
        response = client.get(path)
        assert response.status_code in (200, 302, 400, 403, 405, 503), path  # 503: /healthz
        shown.append((path, body(response)))
    by_design = [(path, text) for path, text in shown if path in (LIFECYCLE, PACKAGE)]
    others = [(path, text) for path, text in shown if path not in (LIFECYCLE, PACKAGE)]

    assert leaks(others, flow.secrets) == []
    assert leaks(by_design, flow.secrets, allowed=["push secret"]) == []


def test_no_admin_page_holds_a_secret(flow, client, superuser_manager):
    client.force_login(superuser_manager)
    shown = []
    for path in admin_paths():
        response = client.get(path)
        assert response.status_code in (200, 302, 403), path
        shown.append((path, body(response)))
    assert len(shown) > 30

    assert leaks(shown, flow.secrets) == []


def test_the_push_secret_is_shown_on_initialize_to_managers_only(flow, client, make_user):
    client.force_login(make_user("another-manager", role="manage"))
    assert PUSH_SECRET in body(client.get(LIFECYCLE))
    with zipfile.ZipFile(io.BytesIO(client.get(PACKAGE).content)) as package:
        assert PUSH_SECRET in package.read("project.xml").decode()

    client.force_login(make_user("another-viewer", role="viewer"))
    page = body(client.get(LIFECYCLE))
    assert PUSH_SECRET not in page
    assert "Hidden: shown to users with the manage permission." in page
    assert client.get(PACKAGE).status_code == 403
