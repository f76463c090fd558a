"""Profiles and settings in the admin: no secret column, checked values, audited changes."""

from __future__ import annotations

import pytest

from connector.models import AuditEntry
from setup_params.models import get_profile

TOKEN = "tok-admin-9e8d7c6b5a"


@pytest.fixture
def admin_client(client, make_user):
    client.force_login(make_user("root", is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def profile_with_token():
    profile = get_profile()
    settings = profile.magento_settings
    settings.token = TOKEN
    settings.save()
    return get_profile()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    [
        "/admin/setup_params/profile/",
        "/admin/setup_params/profile/{profile}/change/",
        "/admin/setup_params/magentosettings/",
        "/admin/setup_params/magentosettings/{magento}/change/",
        "/admin/setup_params/queuesettings/{queue}/change/",
    ],
)
def test_the_admin_never_shows_a_secret(admin_client, profile_with_token, path):
    profile = profile_with_token
    response = admin_client.get(
        path.format(profile=profile.pk, magento=profile.magento_settings.pk,
                    queue=profile.queue_settings.pk)
    )

    html = response.content.decode()
    assert response.status_code == 200
    for secret in (TOKEN, profile.push_secret, profile.push_secret_encrypted,
                   profile.magento_settings.token_encrypted):
        assert secret not in html
    assert "token_encrypted" not in html and "push_secret_encrypted" not in html


@pytest.mark.django_db
def test_queue_settings_changed_in_the_admin_follow_the_rules_and_are_audited(admin_client):
    queue = get_profile().queue_settings
    url = f"/admin/setup_params/queuesettings/{queue.pk}/change/"
    values = {
        "profile": queue.profile_id, "threshold_count": 25, "batch_count": 20,
        "retry_count": 3, "check_process_time": 50, "process_sleep_time": 5, "senders": 1,
    }

    refused = admin_client.post(url, {**values, "process_sleep_time": 50})
    saved = admin_client.post(url, {**values, "batch_count": 15})

    assert "must be less than the check process time" in refused.content.decode()
    assert saved.status_code == 302
    assert get_profile().queue_settings.batch_count == 15
    entry = AuditEntry.objects.get()
    assert (entry.kind, entry.actor, entry.fields) == ("settings_changed", "root", ["batch_count"])


@pytest.mark.django_db
def test_audit_entries_are_read_only_in_the_admin(admin_client):
    entry = AuditEntry.record(AuditEntry.Kind.SETTINGS_CHANGED, actor="cli", fields=["senders"])

    assert admin_client.get("/admin/connector/auditentry/").status_code == 200
    assert admin_client.get("/admin/connector/auditentry/add/").status_code == 403
    assert admin_client.post(f"/admin/connector/auditentry/{entry.pk}/delete/").status_code == 403
    change_page = admin_client.get(f"/admin/connector/auditentry/{entry.pk}/change/")
    assert change_page.status_code == 200 and 'name="_save"' not in change_page.content.decode()


# --- Acumatica settings -----------------------------------------------------------------------

ACUMATICA_SECRETS = {
    "password": "acu-admin-password-4c3b",
    "client_secret": "acu-admin-client-secret-2a1f",
    "access_token": "acu-admin-access-token-8e7d",
    "refresh_token": "acu-admin-refresh-token-6c5b",
}


@pytest.fixture
def acumatica_settings():
    settings = get_profile().acumatica_settings
    settings.instance_url = "https://erp.example.com"
    for name, value in ACUMATICA_SECRETS.items():
        setattr(settings, name, value)
    settings.save()
    return settings


def acumatica_values(settings, **changes) -> dict:
    values = {
        "profile": settings.profile_id, "instance_url": settings.instance_url,
        "endpoint": "Default", "version": "24.200.001", "tenant": "", "branch": "",
        "auth": "cookie", "username": "", "client_id": "", "scopes": "openid api offline_access",
        "concurrency": 2, "time_zone": "UTC", "time_offset": 0, "page_size": 500,
        "batch_size": 2000, "timeout": 60,
    }
    return {**values, **changes}


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["", "{pk}/change/"])
def test_the_admin_never_shows_an_acumatica_secret(admin_client, acumatica_settings, path):
    response = admin_client.get(
        "/admin/setup_params/acumaticasettings/" + path.format(pk=acumatica_settings.pk)
    )

    html = response.content.decode()
    assert response.status_code == 200
    for name, value in ACUMATICA_SECRETS.items():
        assert value not in html
        assert getattr(acumatica_settings, f"{name}_encrypted") not in html
        assert f"{name}_encrypted" not in html


@pytest.mark.django_db
def test_acumatica_settings_changed_in_the_admin_follow_the_rules_and_are_audited(
    admin_client, acumatica_settings
):
    url = f"/admin/setup_params/acumaticasettings/{acumatica_settings.pk}/change/"

    refused = admin_client.post(url, acumatica_values(acumatica_settings, time_zone="Mars/Base"))
    saved = admin_client.post(url, acumatica_values(acumatica_settings, page_size=250))

    assert "is not an IANA time zone name" in refused.content.decode()
    assert saved.status_code == 302
    assert get_profile().acumatica_settings.page_size == 250
    entry = AuditEntry.objects.get()
    assert (entry.actor, entry.fields) == ("root", ["acumatica_page_size"])


@pytest.mark.django_db
def test_a_new_instance_url_in_the_admin_drops_the_tokens(admin_client, acumatica_settings):
    url = f"/admin/setup_params/acumaticasettings/{acumatica_settings.pk}/change/"

    admin_client.post(url, acumatica_values(acumatica_settings,
                                            instance_url="https://other.example.com"))

    stored = get_profile().acumatica_settings
    assert stored.instance_url == "https://other.example.com"
    assert not stored.access_token_encrypted and not stored.refresh_token_encrypted
    assert stored.password == ACUMATICA_SECRETS["password"]
    assert AuditEntry.objects.get().fields == ["acumatica_tokens", "acumatica_url"]
