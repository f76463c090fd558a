"""The Setup Parameters screen: Magento connection and queue processing settings."""

from __future__ import annotations

import pytest
from django.db import connection
from django.utils.html import escape

from connector.models import AuditEntry
from setup_params.models import MagentoSettings, create_profile, get_profile

URL = "/setup/"
SECRET_TOKEN = "tok-very-secret-5c2e9f1a7b"


def form_data(action: str = "save", **changes) -> dict[str, str]:
    """What the browser posts for the default profile's settings, with `changes` applied.

    A value of None leaves the field out (an unticked checkbox).
    """
    data = {
        "action": action,
        "magento_url": "https://shop.example.com",
        "store_code": "default",
        "price_store_id": "0",
        "source_code": "default",
        "use_msi": "msi",
        "magento_token": "",
        "magento_token_confirm": "",
        "timeout": "30",
        "verify_tls": "on",
        "threshold_count": "25",
        "batch_count": "20",
        "retry_count": "3",
        "check_process_time": "50",
        "process_sleep_time": "5",
        "senders": "1",
    }
    data.update({key: str(value) for key, value in changes.items() if value is not None})
    for key in [key for key, value in changes.items() if value is None]:
        data.pop(key, None)
    return data


def with_token(token: str, **changes) -> dict[str, str]:
    return form_data(magento_token=token, magento_token_confirm=token, **changes)


def page_text(response) -> str:
    return response.content.decode()


# --- showing and saving --------------------------------------------------------------------


@pytest.mark.django_db
def test_the_page_shows_both_fieldsets_with_each_settings_meaning(manager_client):
    response = manager_client.get(URL)

    html = page_text(response)
    assert response.status_code == 200
    assert "<legend>Connection Settings</legend>" in html
    assert "<legend>Queue Processing Settings</legend>" in html
    for meaning in [
        "Up to this many pending records a pass sends them one by one",
        "Records per request above the threshold",
        "Attempts before a message is Failed",
        "How long each once-a-minute run keeps looking for new messages",
        "Pause between passes within a run",
        "Parallel send loops per entity",
    ]:
        assert meaning in html
    assert 'value="save"' in html and 'value="test_connection"' in html
    assert "Used in REST URLs: /rest/&lt;store code&gt;/V1/" in html


@pytest.mark.django_db
def test_saving_stores_the_settings_and_says_so(manager_client):
    response = manager_client.post(
        URL,
        with_token(
            SECRET_TOKEN,
            magento_url="https://shop.example.com",
            store_code="fr",
            price_store_id=2,
            source_code="east",
            use_msi="legacy",
            timeout=12,
            verify_tls=None,
            threshold_count=40,
            batch_count=15,
            retry_count=5,
            check_process_time=30,
            process_sleep_time=3,
            senders=4,
        ),
        follow=True,
    )

    assert "Settings saved" in page_text(response)
    profile = get_profile()
    magento, queue = profile.magento_settings, profile.queue_settings
    assert (
        magento.magento_url,
        magento.store_code,
        magento.price_store_id,
        magento.source_code,
        magento.use_msi,
        magento.timeout,
        magento.verify_tls,
        magento.token,
    ) == ("https://shop.example.com", "fr", 2, "east", False, 12, False, SECRET_TOKEN)
    assert (
        queue.threshold_count,
        queue.batch_count,
        queue.retry_count,
        queue.check_process_time,
        queue.process_sleep_time,
        queue.senders,
    ) == (40, 15, 5, 30, 3, 4)


@pytest.mark.django_db
def test_a_second_profile_is_chosen_with_the_profile_parameter(manager_client):
    create_profile("sandbox")

    response = manager_client.post(f"{URL}?profile=sandbox", form_data(batch_count=7))

    assert response.status_code == 302 and response["Location"].endswith("?profile=sandbox")
    assert get_profile("sandbox").queue_settings.batch_count == 7
    assert get_profile("default").queue_settings.batch_count == 20
    assert "data-profile-selector" in page_text(manager_client.get(URL))


@pytest.mark.django_db
def test_an_unknown_profile_answers_404(manager_client):
    assert manager_client.get(f"{URL}?profile=nope").status_code == 404


# --- validation ----------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        (
            "magento_url",
            "ftp://shop.example.com",
            "The Magento URL must start with http:// or https://, e.g. https://shop.example.com.",
        ),
        (
            "magento_url",
            "shop.example.com",
            "The Magento URL must start with http:// or https://, e.g. https://shop.example.com.",
        ),
        (
            "magento_url",
            "https://",
            "The Magento URL must name a host, e.g. https://shop.example.com.",
        ),
        ("threshold_count", 0, "Threshold count must be at least 1."),
        ("batch_count", 0, "Batch count must be between 1 and 10000."),
        ("batch_count", 10001, "Batch count must be between 1 and 10000."),
        ("retry_count", 0, "Retry count must be between 1 and 100."),
        ("retry_count", 101, "Retry count must be between 1 and 100."),
        ("check_process_time", 0, "Check process time must be between 1 and 59 seconds."),
        ("check_process_time", 60, "Check process time must be between 1 and 59 seconds."),
        ("process_sleep_time", 0, "Process sleep time must be at least 1 second."),
        (
            "process_sleep_time",
            50,
            "Process sleep time (50 s) must be less than the check process time (50 s).",
        ),
        ("senders", 0, "Senders must be between 1 and 16."),
        ("senders", 17, "Senders must be between 1 and 16."),
        (
            "store_code",
            "de fault",
            "Store code may contain only letters (a-z), numbers (0-9) or underscore (_), "
            "and must start with a letter.",
        ),
    ],
)
def test_an_invalid_value_is_refused_next_to_its_field_and_nothing_is_saved(
    manager_client, field, value, message
):
    response = manager_client.post(URL, form_data(**{field: value}))

    assert response.status_code == 200
    assert response.context["form"].errors == {field: [message]}
    html = page_text(response)
    assert f'<div id="id_{field}_error" class="invalid-feedback">' in html
    assert escape(message) in html
    assert get_profile().magento_settings.magento_url == ""
    assert not AuditEntry.objects.exists()


@pytest.mark.django_db
def test_batch_count_10000_and_sleep_just_under_check_time_are_accepted(manager_client):
    response = manager_client.post(
        URL, form_data(batch_count=10000, check_process_time=59, process_sleep_time=58)
    )

    assert response.status_code == 302
    assert get_profile().queue_settings.batch_count == 10000


@pytest.mark.django_db
def test_a_pasted_rest_address_is_cut_back_to_the_store_root_and_the_user_told(manager_client):
    response = manager_client.post(
        URL, form_data(magento_url="https://shop.example.com/rest/default/V1"), follow=True
    )

    assert get_profile().magento_settings.magento_url == "https://shop.example.com"
    assert escape(
        "The Magento URL was cut back to https://shop.example.com "
        "(the connector adds /rest/<store code>/V1 itself)."
    ) in page_text(response)


@pytest.mark.django_db
def test_a_trailing_slash_is_stripped_without_a_notice(manager_client):
    response = manager_client.post(
        URL, form_data(magento_url="https://shop.example.com/magento/"), follow=True
    )

    assert get_profile().magento_settings.magento_url == "https://shop.example.com/magento"
    assert "was cut back" not in page_text(response)


@pytest.mark.django_db
def test_batch_count_over_20_shows_the_input_limit_warning(manager_client):
    assert "data-batch-count-warning" not in page_text(manager_client.get(URL))

    response = manager_client.post(URL, form_data(batch_count=21), follow=True)

    html = page_text(response)
    assert "data-batch-count-warning" in html
    assert "Magento refuses lists longer than 20 items" in html


# --- the bearer token ----------------------------------------------------------------------


@pytest.mark.django_db
def test_the_token_is_never_rendered_back_only_that_one_is_set(manager_client):
    response = manager_client.post(URL, with_token(SECRET_TOKEN), follow=True)

    html = page_text(response)
    assert SECRET_TOKEN not in html
    assert 'placeholder="•••• set"' in html
    assert SECRET_TOKEN not in page_text(manager_client.get(URL))


@pytest.mark.django_db
def test_the_database_holds_no_plain_token(manager_client):
    manager_client.post(URL, with_token(SECRET_TOKEN))

    stored = MagentoSettings.objects.values_list("token_encrypted", flat=True).get()
    with connection.cursor() as cursor:
        cursor.execute("SELECT token_encrypted FROM setup_params_magentosettings")
        raw = [row[0] for row in cursor.fetchall()]
    assert stored.startswith("v1:") and SECRET_TOKEN not in stored
    assert raw and all(SECRET_TOKEN not in value for value in raw)
    assert get_profile().magento_settings.token == SECRET_TOKEN


@pytest.mark.django_db
def test_a_token_confirmation_that_does_not_match_is_refused(manager_client):
    response = manager_client.post(
        URL, form_data(magento_token=SECRET_TOKEN, magento_token_confirm=SECRET_TOKEN + "x")
    )

    assert response.context["form"].errors == {
        "magento_token_confirm": ["The bearer token and its confirmation do not match."]
    }
    assert not get_profile().magento_settings.has_token


@pytest.mark.django_db
def test_a_token_with_a_space_is_refused(manager_client):
    response = manager_client.post(URL, with_token("two words"))

    assert response.context["form"].errors == {
        "magento_token": ["The bearer token must not contain spaces or line breaks."]
    }


@pytest.mark.django_db
def test_empty_token_fields_keep_the_stored_token(manager_client):
    manager_client.post(URL, with_token(SECRET_TOKEN))

    manager_client.post(URL, form_data(batch_count=10))

    settings = get_profile().magento_settings
    assert settings.token == SECRET_TOKEN
    assert get_profile().queue_settings.batch_count == 10


# --- audit ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_each_save_writes_one_audit_entry_naming_the_changed_fields_and_no_secret(
    manager_client, manager
):
    manager_client.post(URL, with_token(SECRET_TOKEN, batch_count=10))
    manager_client.post(URL, form_data(batch_count=10, retry_count=7))

    entries = list(AuditEntry.objects.order_by("id"))
    assert [(entry.kind, entry.fields, entry.user, entry.actor) for entry in entries] == [
        ("settings_changed", ["batch_count", "magento_token", "magento_url"], manager, "manager"),
        ("settings_changed", ["retry_count"], manager, "manager"),
    ]
    assert all(SECRET_TOKEN not in f"{entry.fields} {entry.detail}" for entry in entries)


@pytest.mark.django_db
def test_saving_without_a_change_writes_no_audit_entry(manager_client):
    manager_client.post(URL, form_data())
    response = manager_client.post(URL, form_data(), follow=True)

    assert AuditEntry.objects.count() == 1
    assert "Nothing changed." in page_text(response)


# --- roles ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_viewer_sees_the_page_read_only(viewer_client):
    response = viewer_client.get(URL)

    form = response.context["form"]
    html = page_text(response)
    assert response.status_code == 200
    assert all(field.disabled for field in form.fields.values())
    assert html.count(" disabled") >= len(form.fields)
    assert 'value="save"' not in html and 'value="test_connection"' not in html


@pytest.mark.django_db
@pytest.mark.parametrize("action", ["save", "test_connection"])
def test_a_viewer_post_answers_403_and_changes_nothing(viewer_client, action):
    response = viewer_client.post(URL, with_token(SECRET_TOKEN, action=action, batch_count=9))

    assert response.status_code == 403
    assert get_profile().queue_settings.batch_count == 20
    assert not AuditEntry.objects.exists()


@pytest.mark.django_db
def test_a_user_without_a_role_gets_403(nobody_client):
    assert nobody_client.get(URL).status_code == 403


# --- Test Connection -----------------------------------------------------------------------


@pytest.mark.django_db
def test_test_connection_shows_store_codes_ids_websites_and_currencies(
    manager_client, magento, magento_url
):
    response = manager_client.post(
        URL, with_token(magento.token, action="test_connection", magento_url=magento_url)
    )

    outcome = response.context["outcome"]
    html = page_text(response)
    assert outcome.ok
    assert "alert-success" in html and "Test Connection succeeded." in html
    assert "default (id 1, website 1, base currency USD)" in html
    assert "fr (id 2, website 2, base currency EUR)" in html
    assert [entry.path for entry in magento.requests] == [
        "/rest/default/V1/modules",
        "/rest/default/V1/store/storeConfigs",
    ]


@pytest.mark.django_db
def test_test_connection_saves_nothing(manager_client, magento, magento_url):
    manager_client.post(
        URL,
        with_token(magento.token, action="test_connection", magento_url=magento_url, batch_count=5),
    )

    settings = get_profile().magento_settings
    assert (settings.magento_url, settings.has_token) == ("", False)
    assert get_profile().queue_settings.batch_count == 20
    assert not AuditEntry.objects.exists()


@pytest.mark.django_db
def test_test_connection_with_empty_token_fields_uses_the_stored_token(
    manager_client, magento, magento_url
):
    manager_client.post(URL, with_token(magento.token))

    response = manager_client.post(
        URL, form_data(action="test_connection", magento_url=magento_url)
    )

    assert response.context["outcome"].ok
    assert magento.requests[0].status == 200


@pytest.mark.django_db
def test_test_connection_without_any_token_says_to_enter_one(manager_client, magento_url):
    response = manager_client.post(
        URL, form_data(action="test_connection", magento_url=magento_url)
    )

    assert response.context["outcome"].message == (
        "Enter the bearer token first: no token is stored for this profile."
    )


@pytest.mark.django_db
def test_test_connection_with_an_invalid_url_shows_the_field_error_and_calls_nothing(
    manager_client, magento
):
    response = manager_client.post(
        URL, with_token(magento.token, action="test_connection", magento_url="ftp://x")
    )

    assert response.context["outcome"] is None
    assert "magento_url" in response.context["form"].errors
    assert magento.requests == []


BEARER_HINT = "Allow OAuth Access Tokens to be used as standalone Bearer tokens"


def arrange_failure(kind: str, magento, request) -> tuple[str, str, int]:
    """Set up one way Test Connection fails: (Magento URL, token, timeout) to type."""
    url, token, timeout = None, magento.token, 5
    if kind == "token rejected":
        token = "not-the-right-token"
    elif kind == "bearer tokens disabled":
        magento.bearer_disabled = True
    elif kind == "wrong url":
        url = request.getfixturevalue("magento_url") + "/shop"
    elif kind == "html page":
        magento.fail_always("html")
    elif kind == "login redirect":
        magento.fail_always("redirect")
    elif kind == "closed port":
        url = request.getfixturevalue("closed_port_url")
    elif kind == "unresolvable host":
        url = "https://magento.connector-test.invalid"
    elif kind == "self-signed tls":
        url = request.getfixturevalue("tls_magento_url")
    elif kind == "timeout":
        magento.fail_always("timeout")
        timeout = 1
    elif kind == "500":
        magento.fail_always("500")
    elif kind == "maintenance":
        magento.maintenance = True
    return url or request.getfixturevalue("magento_url"), token, timeout


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kind", "sentences"),
    [
        (
            "token rejected",
            [
                "Magento refused the access token (HTTP 401",
                BEARER_HINT,
                "oauth/consumer/enable_integration_as_bearer",
            ],
        ),
        ("bearer tokens disabled", ["Magento refused the access token (HTTP 401", BEARER_HINT]),
        (
            "wrong url",
            [
                "Magento has no API route for GET /V1/modules",
                "Request does not match any route.",
                "Check the Magento base URL",
            ],
        ),
        (
            "html page",
            [
                "Magento answered GET /V1/modules with a web page instead of JSON",
                "Check the Magento base URL",
            ],
        ),
        ("login redirect", ["a login page", "Check the Magento base URL"]),
        ("closed port", ["Connection refused by 127.0.0.1:"]),
        ("unresolvable host", ["Could not resolve host 'magento.connector-test.invalid'"]),
        ("self-signed tls", ["TLS certificate verification failed for 127.0.0.1:", "self-signed"]),
        ("timeout", ["Magento did not answer within 1 s (GET /V1/modules)."]),
        (
            "500",
            [
                "GET /V1/modules",
                "HTTP 500",
                "Internal Error. Details are available in Magento log file. Report ID: webapi-",
            ],
        ),
        ("maintenance", ["Magento is in maintenance mode (HTTP 503"]),
    ],
)
def test_test_connection_failure_shows_its_own_sentence_in_a_danger_alert(
    manager_client, magento, request, kind, sentences
):
    url, token, timeout = arrange_failure(kind, magento, request)

    response = manager_client.post(
        URL, with_token(token, action="test_connection", magento_url=url, timeout=timeout)
    )

    outcome = response.context["outcome"]
    html = page_text(response)
    assert not outcome.ok
    assert "alert-danger" in html and "Test Connection failed." in html
    for sentence in sentences:
        assert sentence in outcome.message
        assert escape(sentence) in html
    assert token not in outcome.message


@pytest.mark.django_db
def test_a_self_signed_certificate_passes_with_tls_verification_off(
    manager_client, magento, tls_magento_url
):
    response = manager_client.post(
        URL,
        with_token(
            magento.token, action="test_connection", magento_url=tls_magento_url, verify_tls=None
        ),
    )

    assert response.context["outcome"].ok
