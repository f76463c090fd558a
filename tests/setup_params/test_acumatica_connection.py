"""The Acumatica Connection screen: settings, Test Connection against the simulator, OAuth 2.0."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.db import connection
from django.utils import timezone

from connector.acumatica import AcumaticaClient, AcumaticaOAuthError, OAuthTokens
from connector.acumatica_connection import client_for
from connector.models import AuditEntry
from sandbox.server import serve
from setup_params import services
from setup_params.models import create_profile, get_profile
from setup_params.validation import InvalidSetting, check_setting, parse_setting
from tests.setup_params.conftest import (
    ACUMATICA_CLIENT_SECRET,
    ACUMATICA_PASSWORD,
    ACUMATICA_TENANT,
    ACUMATICA_USERNAME,
    connect_acumatica,
)

URL = "/acumatica/connection/"
SIGN_IN_URL = "/acumatica/oauth/sign-in/"
CALLBACK_URL = "/acumatica/oauth/callback/"
BASE_URL = "http://testserver"
CLIENT_GUID = "9B6B0D52-3C4A-4E0B-8F0D-2A1C5E7B9D31"


def form_data(action: str = "save", **changes) -> dict[str, str]:
    """What the browser posts for the default profile, with `changes` applied."""
    data = {
        "action": action,
        "acumatica_url": "https://erp.example.com/AcumaticaERP",
        "acumatica_endpoint": "Default",
        "acumatica_version": "24.200.001",
        "acumatica_tenant": ACUMATICA_TENANT,
        "acumatica_branch": "",
        "acumatica_auth": "cookie",
        "acumatica_username": ACUMATICA_USERNAME,
        "acumatica_password": "",
        "acumatica_client_id": "",
        "acumatica_client_secret": "",
        "acumatica_scopes": "openid api offline_access",
        "acumatica_concurrency": "2",
        "acumatica_time_zone": "UTC",
        "acumatica_time_offset": "0",
        "acumatica_page_size": "500",
        "acumatica_batch_size": "2000",
        "acumatica_timeout": "60",
    }
    data.update({key: str(value) for key, value in changes.items()})
    return data


def typed_test(url: str, **changes) -> dict[str, str]:
    """Test Connection of working cookie settings for the simulator at `url`, typed."""
    values = {"acumatica_url": url, "acumatica_password": ACUMATICA_PASSWORD,
              "acumatica_timeout": 5}
    return form_data("test_connection", **{**values, **changes})


def page_text(response) -> str:
    return response.content.decode()


def result_of(response) -> str:
    """The Test Connection alert's text, whitespace folded."""
    html = page_text(response)
    start = html.index("data-test-connection-result")
    return " ".join(html[start: html.index("</div>", start)].split())


def raw_column(column: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM setup_params_acumaticasettings")  # noqa: S608
        return " ".join(str(row[0]) for row in cursor.fetchall())


def paths(simulator) -> list[str]:
    return [f"{entry.method} {entry.path.split('?')[0]}" for entry in simulator.requests]


# --- showing and saving ---------------------------------------------------------------------


@pytest.mark.django_db
def test_the_page_shows_the_settings_their_defaults_and_the_callback_url(
    manager_client, settings
):
    settings.CONNECTOR_BASE_URL = "https://connector.example.com"

    html = page_text(manager_client.get(URL))

    for legend in ("Instance", "Sign-in", "Limits and time"):
        assert f"<legend>{legend}</legend>" in html
    for label in ("Instance URL", "Endpoint name", "Endpoint version", "Tenant", "Branch",
                  "Authentication type", "Username", "Password", "Client ID", "Client secret",
                  "Scopes", "Concurrency level", "Time zone", "Time offset (s)", "Page size",
                  "Batch size", "Timeout (s)"):
        assert f"{label}" in html
    assert 'value="openid api offline_access"' in html
    assert 'name="acumatica_page_size" value="500"' in html
    assert 'name="acumatica_batch_size" value="2000"' in html
    assert 'value="https://connector.example.com/acumatica/oauth/callback/"' in html
    assert "Connected Applications form (SM303010)" in html
    assert "From Connected Applications (SM303010): &lt;GUID&gt;@&lt;Tenant&gt;." in html
    assert 'value="save"' in html and 'value="test_connection"' in html
    assert "Sign in with Acumatica" in html
    assert '<option value="Europe/Berlin">' in html


@pytest.mark.django_db
def test_saving_stores_every_setting_and_encrypts_the_secrets(manager_client):
    response = manager_client.post(
        URL,
        form_data(
            acumatica_url="https://erp.example.com/AcumaticaERP",
            acumatica_endpoint="Manufacturing",
            acumatica_version="23.200.001",
            acumatica_tenant="Company",
            acumatica_branch="HQ",
            acumatica_auth="oauth2",
            acumatica_username="integration",
            acumatica_password=ACUMATICA_PASSWORD,
            acumatica_client_id=f"{CLIENT_GUID}@Company",
            acumatica_client_secret=ACUMATICA_CLIENT_SECRET,
            acumatica_scopes="api offline_access",
            acumatica_concurrency=25,
            acumatica_time_zone="Europe/Berlin",
            acumatica_time_offset=3600,
            acumatica_page_size=10000,
            acumatica_batch_size=10000,
            acumatica_timeout=600,
        ),
        follow=True,
    )

    assert "Settings saved" in page_text(response)
    stored = get_profile().acumatica_settings
    assert (
        stored.instance_url, stored.endpoint, stored.version, stored.tenant, stored.branch,
        stored.auth, stored.username, stored.password, stored.client_id, stored.client_secret,
        stored.scopes, stored.concurrency, stored.time_zone, stored.time_offset,
        stored.page_size, stored.batch_size, stored.timeout,
    ) == (
        "https://erp.example.com/AcumaticaERP", "Manufacturing", "23.200.001", "Company", "HQ",
        "oauth2", "integration", ACUMATICA_PASSWORD, f"{CLIENT_GUID}@Company",
        ACUMATICA_CLIENT_SECRET, "api offline_access", 25, "Europe/Berlin", 3600, 10000,
        10000, 600,
    )
    raw = raw_column("password_encrypted") + raw_column("client_secret_encrypted")
    assert ACUMATICA_PASSWORD not in raw and ACUMATICA_CLIENT_SECRET not in raw
    assert raw.strip()


@pytest.mark.django_db
def test_secrets_are_never_rendered_back_and_an_empty_field_keeps_them(manager_client):
    manager_client.post(URL, form_data(acumatica_password=ACUMATICA_PASSWORD,
                                       acumatica_client_secret=ACUMATICA_CLIENT_SECRET))

    html = page_text(manager_client.get(URL))
    response = manager_client.post(URL, form_data(acumatica_branch="HQ"), follow=True)

    assert ACUMATICA_PASSWORD not in html and ACUMATICA_CLIENT_SECRET not in html
    assert html.count('placeholder="•••• set"') == 2
    assert "A password is stored (•••• set). Leave empty to keep it." in html
    assert ACUMATICA_PASSWORD not in page_text(response)
    stored = get_profile().acumatica_settings
    assert stored.password == ACUMATICA_PASSWORD
    assert stored.client_secret == ACUMATICA_CLIENT_SECRET
    assert stored.branch == "HQ"


@pytest.mark.django_db
def test_saving_audits_the_changed_field_names_never_a_secret(manager_client, manager):
    manager_client.post(URL, form_data(acumatica_password=ACUMATICA_PASSWORD,
                                       acumatica_page_size=250))

    entry = AuditEntry.objects.get()
    assert (entry.kind, entry.user, entry.fields) == (
        "settings_changed",
        manager,
        [
            "acumatica_page_size", "acumatica_password", "acumatica_tenant", "acumatica_url",
            "acumatica_username",
        ],
    )
    assert ACUMATICA_PASSWORD not in f"{entry.fields} {entry.detail} {entry.actor}"


@pytest.mark.django_db
def test_an_instance_url_with_the_api_path_is_cut_back_and_the_user_told(manager_client):
    response = manager_client.post(
        URL,
        form_data(acumatica_url="https://erp.example.com/AcumaticaERP/entity/Default/"
                                "24.200.001/StockItem"),
        follow=True,
    )

    assert get_profile().acumatica_settings.instance_url == "https://erp.example.com/AcumaticaERP"
    assert (
        "The instance URL was cut back to https://erp.example.com/AcumaticaERP (the connector "
        "adds /entity/&lt;endpoint&gt;/&lt;version&gt; itself)."
    ) in page_text(response)


@pytest.mark.django_db
def test_saving_the_same_values_again_changes_nothing(manager_client):
    manager_client.post(URL, form_data())

    response = manager_client.post(URL, form_data(), follow=True)

    assert "Nothing changed." in page_text(response)
    assert AuditEntry.objects.count() == 1


@pytest.mark.django_db
def test_a_second_profile_is_chosen_with_the_profile_parameter(manager_client):
    create_profile("sandbox")

    response = manager_client.post(f"{URL}?profile=sandbox", form_data(acumatica_page_size=42))

    assert response.status_code == 302 and response["Location"].endswith("?profile=sandbox")
    assert get_profile("sandbox").acumatica_settings.page_size == 42
    assert get_profile("default").acumatica_settings.page_size == 500


# --- validation: every rule, the same sentence on the screen and on the command line --------

RULES = [
    ("acumatica_url", "ftp://erp.example.com",
     "The instance URL must start with http:// or https://, e.g. "
     "https://mycompany.acumatica.com or https://erp.example.com/AcumaticaERP."),
    ("acumatica_url", "https://erp example.com", "The instance URL must not contain spaces."),
    ("acumatica_url", "https://admin:pw@erp.example.com",
     "The instance URL must not contain a user name or password: enter them in their own "
     "fields."),
    ("acumatica_url", "https://erp.example.com/?company=x",
     "The instance URL must not contain a ?query or a #fragment."),
    ("acumatica_url", "https://:443/x", "The instance URL must name a host"),
    ("acumatica_version", "24.2",
     "The endpoint version must look like 24.200.001 (Test Connection lists the versions the "
     "instance offers)."),
    ("acumatica_client_id", "not-a-guid@MyStore",
     "The client id must look like &lt;GUID&gt;@&lt;Tenant&gt;"),
    ("acumatica_client_id", CLIENT_GUID,
     "The client id must look like &lt;GUID&gt;@&lt;Tenant&gt;"),
    ("acumatica_client_secret", "two words", "The client secret must not contain spaces."),
    ("acumatica_scopes", "openid offline_access",
     "The scopes must include api (Acumatica&#x27;s web services); the usual set is openid api "
     "offline_access."),
    ("acumatica_scopes", 'openid "api"',
     "&#x27;&quot;api&quot;&#x27; is not a scope: separate scopes with spaces, without quotes."),
    ("acumatica_concurrency", "0", "Concurrency level must be between 1 and 25."),
    ("acumatica_concurrency", "26", "Concurrency level must be between 1 and 25."),
    ("acumatica_time_zone", "Mars/Olympus_Mons",
     "&#x27;Mars/Olympus_Mons&#x27; is not an IANA time zone name"),
    ("acumatica_time_zone", "localtime", "&#x27;localtime&#x27; is not an IANA time zone name"),
    ("acumatica_time_zone", "CEST", "&#x27;CEST&#x27; is not an IANA time zone name"),
    ("acumatica_time_offset", "3601", "Time offset must be between 0 and 3600 seconds."),
    ("acumatica_time_offset", "-1", "Time offset must be between 0 and 3600 seconds."),
    ("acumatica_page_size", "0", "Page size must be between 1 and 10000."),
    ("acumatica_page_size", "10001", "Page size must be between 1 and 10000."),
    ("acumatica_batch_size", "10001", "Batch size must be between 1 and 10000."),
    ("acumatica_batch_size", "0", "Batch size must be between 1 and 10000."),
    ("acumatica_timeout", "0", "Timeout must be between 1 and 600 seconds."),
    ("acumatica_timeout", "601", "Timeout must be between 1 and 600 seconds."),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("field", "value", "message"), RULES)
def test_an_invalid_value_shows_its_sentence_next_to_the_field_and_saves_nothing(
    manager_client, field, value, message
):
    response = manager_client.post(URL, form_data(**{field: value}))

    html = page_text(response)
    assert response.status_code == 200
    assert f'id="id_{field}_error"' in html
    assert message in html
    assert get_profile().acumatica_settings.instance_url == ""
    assert not AuditEntry.objects.exists()


@pytest.mark.parametrize(
    ("key", "typed", "stored"),
    [
        ("acumatica_endpoint", "manufacturing", "Manufacturing"),
        ("acumatica_endpoint", "Ecommerce", "Ecommerce"),
        ("acumatica_auth", "OAuth2", "oauth2"),
        ("acumatica_auth", "cookie", "cookie"),
        ("acumatica_url", "HTTPS://erp.example.com/", "https://erp.example.com"),
        ("acumatica_url", "https://x.acumatica.com/Main?ScreenId=00000000",
         "https://x.acumatica.com"),
        ("acumatica_scopes", "  openid   api  api ", "openid api"),
        ("acumatica_time_zone", "America/New_York", "America/New_York"),
        ("acumatica_client_id", f" {CLIENT_GUID.lower()}@MyStore ",
         f"{CLIENT_GUID.lower()}@MyStore"),
        ("acumatica_tenant", "", ""),
        ("acumatica_time_offset", "0", 0),
        ("acumatica_password", " spaces kept ", " spaces kept "),
    ],
)
def test_values_are_tidied_the_same_way_for_the_command_line(key, typed, stored):
    assert parse_setting(key, typed) == stored


@pytest.mark.parametrize(
    ("key", "typed", "message"),
    [
        ("acumatica_endpoint", "Custom", "The endpoint must be one of Default, Manufacturing, "
                                         "Ecommerce."),
        ("acumatica_auth", "basic", "The authentication must be cookie or oauth2, not 'basic'."),
        ("acumatica_url", "", "Enter the Acumatica instance URL"),
        ("acumatica_password", "", "The password must not be empty."),
        ("acumatica_password", "a\nb", "The password must not contain line breaks."),
        ("acumatica_time_zone", "", "Enter the instance's time zone"),
        ("acumatica_page_size", "many", "Page size must be a whole number, not 'many'."),
    ],
)
def test_the_command_line_only_rules(key, typed, message):
    with pytest.raises(InvalidSetting) as refused:
        parse_setting(key, typed)

    assert str(refused.value).startswith(message)


def test_every_screen_rule_refuses_the_same_value_on_the_command_line():
    for key, value, _ in RULES:
        with pytest.raises(InvalidSetting):
            parse_setting(key, value)
    assert check_setting("acumatica_concurrency", 25) == 25


# --- roles ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_viewer_sees_the_settings_read_only(viewer_client):
    html = page_text(viewer_client.get(URL))

    assert "data-read-only" in html
    assert 'name="acumatica_url"' in html and "disabled" in html
    assert 'value="save"' not in html and 'value="test_connection"' not in html
    assert "data-oauth-sign-in" not in html
    assert "/acumatica/oauth/callback/" in html


@pytest.mark.django_db
@pytest.mark.parametrize("path", [URL, SIGN_IN_URL])
def test_a_viewer_cannot_post(viewer_client, path):
    response = viewer_client.post(path, form_data())

    assert response.status_code == 403
    assert get_profile().acumatica_settings.instance_url == ""


@pytest.mark.django_db
def test_an_unknown_action_is_refused(manager_client):
    assert manager_client.post(URL, form_data("explode")).status_code == 400


# --- Test Connection against the simulator ---------------------------------------------------


@pytest.mark.django_db
def test_test_connection_lists_the_endpoints_reads_a_stock_item_signs_out_and_saves_nothing(
    manager_client, acumatica, acumatica_url
):
    response = manager_client.post(URL, typed_test(acumatica_url))

    result = result_of(response)
    assert "Test Connection succeeded." in result
    assert f"Connected to Acumatica 24.200.0198 at {acumatica_url} (tenant MyStore" in result
    assert "Read stock item AACOMPUT01 (Computer, desktop) through Default/24.200.001." in result
    assert "<td>Default</td><td>22.200.001, 23.200.001, 24.200.001, 25.200.001</td>" in result
    assert "<td>Manufacturing</td><td>24.200.001</td>" in result
    assert '<datalist id="acumatica-versions"><option value="22.200.001">' in page_text(response)
    assert paths(acumatica) == [
        "POST /entity/auth/login",
        "GET /entity",
        "GET /entity/Default/24.200.001/StockItem",
        "POST /entity/auth/logout",
    ]
    assert acumatica.seats_in_use == 0
    assert ACUMATICA_PASSWORD not in page_text(response)
    assert get_profile().acumatica_settings.instance_url == ""
    assert not AuditEntry.objects.exists()


@pytest.mark.django_db
def test_test_connection_falls_back_to_the_stored_password(
    manager_client, acumatica, acumatica_url
):
    connect_acumatica(acumatica_url)

    response = manager_client.post(URL, typed_test(acumatica_url, acumatica_password=""))

    assert "Test Connection succeeded." in result_of(response)
    assert acumatica.calls("/entity/auth/login")[0].json_body["password"] == "<redacted>"


@pytest.mark.django_db
def test_test_connection_with_an_api_path_says_the_url_was_cut_back(
    manager_client, acumatica_url
):
    response = manager_client.post(
        URL, typed_test(f"{acumatica_url}/entity/Default/24.200.001/"), follow=True
    )

    assert "Test Connection succeeded." in result_of(response)
    assert f"The instance URL was cut back to {acumatica_url}" in page_text(response)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("changes", "sentence"),
    [
        (
            {"acumatica_password": "not-the-password"},
            "Acumatica refused the sign-in of user &#x27;admin&#x27;: wrong user name or "
            "password",
        ),
        (
            {"acumatica_tenant": "Nope"},
            "Acumatica does not know the tenant &#x27;Nope&#x27;",
        ),
        (
            {"acumatica_version": "19.100.001"},
            "Acumatica has no endpoint Default version 19.100.001 (HTTP 404). The instance "
            "offers: Default 22.200.001, Default 23.200.001, Default 24.200.001, Default "
            "25.200.001, Ecommerce 24.200.001, Manufacturing 24.200.001.",
        ),
        (
            {"acumatica_endpoint": "Manufacturing", "acumatica_version": "25.200.001"},
            "Acumatica has no endpoint Manufacturing version 25.200.001 (HTTP 404).",
        ),
    ],
)
def test_test_connection_says_what_acumatica_refused_and_still_signs_out(
    manager_client, acumatica, acumatica_url, changes, sentence
):
    response = manager_client.post(URL, typed_test(acumatica_url, **changes))

    result = result_of(response)
    assert "Test Connection failed." in result
    assert sentence in result
    assert "not-the-password" not in page_text(response)
    assert acumatica.seats_in_use == 0


@pytest.mark.django_db
def test_endpoint_not_found_lists_the_offered_versions_in_a_table(manager_client, acumatica_url):
    response = manager_client.post(URL, typed_test(acumatica_url,
                                                  acumatica_version="19.100.001"))

    assert "<td>Default</td><td>22.200.001, 23.200.001, 24.200.001, 25.200.001</td>" in (
        result_of(response)
    )


@pytest.mark.django_db
def test_the_login_limit_is_explained_after_one_attempt_not_a_storm(
    manager_client, acumatica, acumatica_url
):
    other = client_for(connect_acumatica(acumatica_url))
    with other.session():  # another integration holds the only API seat
        acumatica.reset_log()

        response = manager_client.post(URL, typed_test(acumatica_url))

        assert acumatica.login_attempts == 1
        assert paths(acumatica) == ["POST /entity/auth/login"]
    result = result_of(response)
    assert "Test Connection failed." in result
    assert "every API-user seat of its license is in use (API Login Limit)" in result
    assert "Wait up to 10 minutes" in result
    assert "License Monitoring Console (SM604000)" in result


@pytest.mark.django_db
def test_a_closed_port_is_connection_refused(manager_client, closed_port_url):
    response = manager_client.post(URL, typed_test(closed_port_url))

    assert "Connection refused by 127.0.0.1:" in result_of(response)
    assert "Check the Acumatica instance URL and port" in result_of(response)


@pytest.mark.django_db
def test_an_unknown_host_cannot_be_resolved(manager_client):
    response = manager_client.post(URL, typed_test("https://erp.acumatica.invalid"))

    assert (
        "Could not resolve host &#x27;erp.acumatica.invalid&#x27;: check the Acumatica "
        "instance URL"
    ) in result_of(response)


@pytest.mark.django_db
def test_a_web_page_is_not_an_acumatica_instance(manager_client, acumatica, acumatica_url):
    acumatica.fail_always("html")

    response = manager_client.post(URL, typed_test(acumatica_url))

    result = result_of(response)
    assert "This address does not look like an Acumatica instance" in result
    assert "Welcome to nginx!" in result
    assert "without /entity or /Main" in result


@pytest.mark.django_db
def test_no_answer_within_the_timeout(manager_client, acumatica, acumatica_url):
    acumatica.fail_next(1, "timeout")

    response = manager_client.post(URL, typed_test(acumatica_url, acumatica_timeout=1))

    acumatica.release_waiters()
    assert "Acumatica did not answer within 1 s (POST /entity/auth/login)." in (
        result_of(response)
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("changes", "sentence"),
    [
        ({"acumatica_username": "", "acumatica_password": ""},
         "Enter the Acumatica username first."),
        ({"acumatica_password": ""},
         "Enter the password first: no password is stored for this profile."),
        ({"acumatica_auth": "oauth2"},
         "Enter the client id first: it is on Acumatica&#x27;s Connected Applications form "
         "(SM303010), as &lt;GUID&gt;@&lt;Tenant&gt;."),
        ({"acumatica_auth": "oauth2", "acumatica_client_id": f"{CLIENT_GUID}@MyStore"},
         "Enter the client secret first: no client secret is stored for this profile."),
    ],
)
def test_a_missing_credential_is_named_before_anything_is_sent(
    manager_client, acumatica, acumatica_url, changes, sentence
):
    response = manager_client.post(URL, typed_test(acumatica_url, **changes))

    assert sentence in result_of(response)
    assert acumatica.requests == []


@pytest.mark.django_db
def test_fifty_test_connections_with_one_api_seat_never_hit_the_login_limit(
    manager_client, acumatica, acumatica_url
):
    connect_acumatica(acumatica_url)

    outcomes = [
        result_of(manager_client.post(URL, typed_test(acumatica_url, acumatica_password="")))
        for _ in range(50)
    ]

    assert all("Test Connection succeeded." in outcome for outcome in outcomes)
    assert acumatica.login_attempts == 50
    assert acumatica.count("/entity/auth/logout") == 50
    assert acumatica.seats_in_use == 0


@pytest.mark.django_db
def test_the_service_tests_stored_settings_and_refuses_unknown_overrides(acumatica_url):
    profile = connect_acumatica(acumatica_url)

    outcome = services.test_acumatica_connection(profile)

    assert outcome.ok and ("Default", "25.200.001") in outcome.endpoints
    with pytest.raises(TypeError):
        services.test_acumatica_connection(profile, page_size=10)


# --- OAuth 2.0 ------------------------------------------------------------------------------


@pytest.fixture
def oauth_profile(acumatica, acumatica_url, settings):
    """The default profile set up for OAuth 2.0 against the simulator; the callback URL is
    registered on the simulator's Connected Application."""
    settings.CONNECTOR_BASE_URL = BASE_URL
    acumatica.register_redirect_uri(services.oauth_callback_url())
    return connect_acumatica(
        acumatica_url, auth="oauth2", client_id=acumatica.client_id,
        client_secret=ACUMATICA_CLIENT_SECRET, username="", password="",
    )


def start_sign_in(client) -> str:
    """Press Sign in with Acumatica; the authorize address the browser is sent to."""
    response = client.post(SIGN_IN_URL)
    assert response.status_code == 302
    return response["Location"]


def authorize(authorize_url: str) -> str:
    """Acumatica's authorize page (auto-approved): where it sends the browser back to."""
    answer = requests.get(authorize_url, allow_redirects=False, timeout=5)
    assert answer.status_code == 302
    location = urlsplit(answer.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == BASE_URL + CALLBACK_URL
    return f"{location.path}?{location.query}"


@pytest.mark.django_db
def test_sign_in_with_acumatica_stores_the_tokens_encrypted_and_audits_them(
    manager_client, manager, acumatica, acumatica_url, oauth_profile
):
    authorize_url = start_sign_in(manager_client)
    query = parse_qs(urlsplit(authorize_url).query)
    assert authorize_url.startswith(f"{acumatica_url}/identity/connect/authorize?")
    assert query["client_id"] == [acumatica.client_id]
    assert query["redirect_uri"] == [f"{BASE_URL}{CALLBACK_URL}"]
    assert query["scope"] == ["openid api offline_access"]
    assert len(query["state"][0]) >= 40

    response = manager_client.get(authorize(authorize_url), follow=True)

    assert response.redirect_chain[-1][0] == f"{URL}?profile=default"
    assert "Signed in with Acumatica: the connector is authorized (OAuth 2.0)." in (
        page_text(response)
    )
    assert "<strong>Authorized.</strong>" in page_text(response)
    stored = get_profile().acumatica_settings
    assert stored.access_token and stored.refresh_token
    assert stored.token_expires_at > timezone.now() + timedelta(minutes=59)
    raw = raw_column("access_token_encrypted") + raw_column("refresh_token_encrypted")
    assert stored.access_token not in raw and stored.refresh_token not in raw
    token_calls = acumatica.calls("/identity/connect/token")
    assert [call.json_body["grant_type"] for call in token_calls] == ["authorization_code"]
    entry = AuditEntry.objects.get()
    assert (entry.kind, entry.user, entry.fields) == (
        "settings_changed", manager, ["acumatica_tokens"]
    )
    assert stored.access_token not in f"{entry.fields} {entry.detail}"
    assert stored.refresh_token not in f"{entry.fields} {entry.detail}"


@pytest.mark.django_db
def test_after_sign_in_test_connection_uses_the_bearer_token_without_a_cookie_login(
    manager_client, acumatica, acumatica_url, oauth_profile
):
    manager_client.get(authorize(start_sign_in(manager_client)))

    response = manager_client.post(URL, typed_test(
        acumatica_url, acumatica_auth="oauth2", acumatica_username="", acumatica_password="",
        acumatica_client_id=acumatica.client_id,
    ))

    assert "Test Connection succeeded." in result_of(response)
    assert "OAuth 2.0 token" in result_of(response)
    assert acumatica.count("/entity/auth/login") == 0
    assert acumatica.calls("/StockItem")[0].headers["Authorization"] == "Bearer <redacted>"


@pytest.mark.django_db
def test_a_callback_is_used_once(manager_client, acumatica, oauth_profile):
    callback = authorize(start_sign_in(manager_client))
    manager_client.get(callback)

    replay = manager_client.get(callback)

    assert replay.status_code == 400
    assert acumatica.count("/identity/connect/token") == 1


@pytest.mark.django_db
def test_a_wrong_state_is_refused_and_nothing_is_stored(manager_client, acumatica, oauth_profile):
    callback = authorize(start_sign_in(manager_client))
    query = parse_qs(urlsplit(callback).query)
    forged = f"{CALLBACK_URL}?code={query['code'][0]}&state=forged-state"

    response = manager_client.get(forged)

    assert response.status_code == 400
    assert "its state is missing or does not match" in page_text(response)
    assert "nothing was stored" in page_text(response)
    stored = get_profile().acumatica_settings
    assert not stored.access_token_encrypted and not stored.refresh_token_encrypted
    assert acumatica.count("/identity/connect/token") == 0
    assert not AuditEntry.objects.exists()
    assert manager_client.get(callback).status_code == 302  # the real answer still works


@pytest.mark.django_db
@pytest.mark.parametrize("query", ["?code=abc&state=", "?code=abc", ""])
def test_a_callback_nobody_started_is_refused_even_without_login(client, query):
    response = client.get(f"{CALLBACK_URL}{query}")

    assert response.status_code == 400
    assert "Sign-in with Acumatica refused" in page_text(response)


@pytest.mark.django_db
def test_a_declined_authorization_goes_back_to_the_screen_saying_so(
    manager_client, acumatica, oauth_profile
):
    state = parse_qs(urlsplit(start_sign_in(manager_client)).query)["state"][0]

    response = manager_client.get(
        f"{CALLBACK_URL}?error=access_denied&state={state}", follow=True
    )

    assert "Acumatica did not authorize the connector (access_denied). Nothing changed." in (
        page_text(response)
    )
    assert not get_profile().acumatica_settings.access_token_encrypted


@pytest.mark.django_db
def test_a_refused_code_is_said_on_the_screen(manager_client, acumatica, oauth_profile):
    state = parse_qs(urlsplit(start_sign_in(manager_client)).query)["state"][0]

    response = manager_client.get(f"{CALLBACK_URL}?code=made-up&state={state}", follow=True)

    assert "Acumatica refused the authorization" in page_text(response)
    assert not get_profile().acumatica_settings.access_token_encrypted


@pytest.mark.django_db
def test_sign_in_needs_saved_oauth_settings(manager_client):
    response = manager_client.post(SIGN_IN_URL, follow=True)

    assert (
        "Choose OAuth 2.0 as the authentication and save before signing in with Acumatica."
        in page_text(response)
    )
    assert "acumatica_oauth" not in manager_client.session


@pytest.mark.django_db
def test_the_password_flow_is_used_when_oauth_has_a_username_and_no_tokens(
    acumatica, oauth_profile
):
    stored = oauth_profile.acumatica_settings
    stored.username, stored.password = ACUMATICA_USERNAME, ACUMATICA_PASSWORD
    stored.save()

    outcome = services.test_acumatica_connection(get_profile())

    assert outcome.ok
    token_calls = acumatica.calls("/identity/connect/token")
    assert [call.json_body["grant_type"] for call in token_calls] == ["password"]
    assert get_profile().acumatica_settings.refresh_token


@pytest.mark.django_db
def test_an_expired_token_is_refreshed_and_the_rotated_refresh_token_replaces_the_old(
    acumatica, oauth_profile
):
    services.complete_authorization(
        oauth_profile, _code_for(acumatica, oauth_profile), services.oauth_callback_url()
    )
    stored = get_profile().acumatica_settings
    old_access, old_refresh = stored.access_token, stored.refresh_token
    stored.token_expires_at = timezone.now() - timedelta(minutes=1)
    stored.save(update_fields=["token_expires_at"])

    with client_for(get_profile()) as client:
        item = client.first_stock_item()

    assert item is not None
    renewed = get_profile().acumatica_settings
    assert renewed.refresh_token != old_refresh and renewed.access_token != old_access
    assert renewed.token_expires_at > timezone.now() + timedelta(minutes=59)
    assert [call.json_body["grant_type"] for call in acumatica.calls("/identity/connect/token")
            ] == ["authorization_code", "refresh_token"]
    stale = AcumaticaClient(client.settings, tokens=OAuthTokens(old_access, old_refresh))
    with pytest.raises(AcumaticaOAuthError) as refused:
        stale.refresh()
    assert refused.value.error_code == "invalid_grant"


def _code_for(acumatica, profile) -> str:
    """An authorization code from the simulator's auto-approved authorize page."""
    url = services.authorization_url(profile, services.oauth_callback_url(), "s")
    answer = requests.get(url, allow_redirects=False, timeout=5)
    return parse_qs(urlsplit(answer.headers["Location"]).query)["code"][0]


@pytest.mark.django_db
def test_a_new_instance_url_drops_the_stored_tokens(manager_client, acumatica, oauth_profile):
    manager_client.get(authorize(start_sign_in(manager_client)))

    response = manager_client.post(URL, form_data(
        acumatica_url="https://other.example.com", acumatica_auth="oauth2",
        acumatica_username="", acumatica_client_id=acumatica.client_id,
    ), follow=True)

    stored = get_profile().acumatica_settings
    assert not stored.access_token_encrypted and not stored.refresh_token_encrypted
    assert stored.token_expires_at is None
    assert "sign in with Acumatica again" in page_text(response)
    assert "acumatica_tokens" in AuditEntry.objects.first().fields


@pytest.mark.django_db
def test_stored_tokens_are_never_sent_to_a_typed_other_address(acumatica, oauth_profile):
    other = type(acumatica)()
    with serve(other) as other_url:
        stored = oauth_profile.acumatica_settings
        stored.access_token, stored.refresh_token = "stored-access-token", "stored-refresh-tok"
        stored.token_expires_at = timezone.now() + timedelta(hours=1)
        stored.save()

        outcome = services.test_acumatica_connection(get_profile(), instance_url=other_url)

    assert not outcome.ok
    assert outcome.message == (
        "The connector has no OAuth token yet: authorize it on the Acumatica Connection screen."
    )
    assert other.requests == [] and acumatica.requests == []
    assert get_profile().acumatica_settings.access_token == "stored-access-token"
