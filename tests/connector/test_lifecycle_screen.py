"""The Initialize / Deactivate screen: state, history, push settings, and the four actions."""

from __future__ import annotations

import pytest
from django_celery_beat.models import IntervalSchedule

from connector.lifecycle import initialize, pause, processor_schedulers
from connector.models import AuditEntry
from setup_params.models import Profile, create_profile, get_profile

URL = "/lifecycle/"
CONFIRM = "Are you sure you wish to initialize all features for Magento Connector?"


@pytest.fixture
def active_profile(connected_profile) -> Profile:
    initialize(connected_profile, actor="test")
    return get_profile("default")


def state_of(name: str = "default") -> str:
    return Profile.objects.get(name=name).state


def test_screen_shows_state_push_settings_and_history_newest_first(
    manager_client, connected_profile
):
    initialize(connected_profile, actor="alice")
    pause(get_profile("default"), actor="bob")

    page = manager_client.get(URL).content.decode()

    assert 'data-state="paused"' in page
    assert "Changed by bob" in page
    assert connected_profile.push_url in page
    assert connected_profile.push_url.endswith("/acumatica/push/default/")
    assert "X-Connector-Secret" in page
    assert f'value="{connected_profile.push_secret}"' in page
    assert page.index('data-history-kind="pause"') < page.index('data-history-kind="initialize"')
    assert "connector: default price" in page and "connector: default inventory" in page


def test_screen_of_a_new_profile_offers_initialize_only(manager_client, db):
    page = manager_client.get(URL).content.decode()

    assert 'data-state="new"' in page
    assert CONFIRM in page
    assert 'data-bs-target="#initialize-dialog"' in page
    assert 'data-bs-target="#deactivate-dialog"' not in page
    assert 'value="activate"' not in page
    assert "None yet: Initialize creates them." in page


def test_profile_is_chosen_with_the_query_string(manager_client, db):
    other = create_profile("sandbox")

    page = manager_client.get(URL, {"profile": "sandbox"}).content.decode()

    assert "profile sandbox" in page
    assert other.push_url in page
    assert manager_client.get(URL, {"profile": "nope"}).status_code == 404


def test_initialize_with_working_magento_activates_and_enables_schedulers(
    manager_client, connected_profile
):
    response = manager_client.post(URL, {"action": "initialize"}, follow=True)

    assert state_of() == Profile.State.ACTIVE
    page = response.content.decode()
    assert "is initialized and active" in page
    assert "Connected to Magento" in page
    schedulers = list(processor_schedulers(connected_profile))
    assert len(schedulers) == 2
    for task in schedulers:
        assert task.enabled
        assert task.queue == "processors"
        assert (task.interval.every, task.interval.period) == (1, IntervalSchedule.MINUTES)
        assert task.expire_seconds == 55
    entry = AuditEntry.objects.get(kind=AuditEntry.Kind.INITIALIZE)
    assert (entry.actor, entry.profile) == ("manager", connected_profile)
    assert 'data-enabled="true"' in page


def test_initialize_against_magento_refusing_the_token_stays_new(manager_client, connected_profile):
    settings = connected_profile.magento_settings
    settings.token = "wrong-token"
    settings.save()

    response = manager_client.post(URL, {"action": "initialize"}, follow=True)

    assert state_of() == Profile.State.NEW
    page = response.content.decode()
    assert "alert-danger" in page
    assert "Initialize stopped: Magento refused the access token (HTTP 401" in page
    assert not processor_schedulers(connected_profile).exists()
    assert not AuditEntry.objects.filter(kind=AuditEntry.Kind.INITIALIZE).exists()


def test_pause_then_activate(manager_client, active_profile):
    manager_client.post(URL, {"action": "deactivate", "mode": "pause"})
    assert state_of() == Profile.State.PAUSED
    page = manager_client.get(URL).content.decode()
    assert 'value="activate"' in page

    response = manager_client.post(URL, {"action": "activate"}, follow=True)

    assert state_of() == Profile.State.ACTIVE
    assert "sync to Magento resumes" in response.content.decode()
    kinds = list(AuditEntry.objects.values_list("kind", flat=True))
    assert kinds == ["activate", "pause", "initialize"]
    assert all(task.enabled for task in processor_schedulers(active_profile))


def test_stop_disables_the_schedulers(manager_client, active_profile):
    manager_client.post(URL, {"action": "deactivate", "mode": "stop"})

    assert state_of() == Profile.State.STOPPED
    assert not any(task.enabled for task in processor_schedulers(active_profile))
    assert AuditEntry.objects.filter(kind=AuditEntry.Kind.STOP, actor="manager").exists()
    page = manager_client.get(URL).content.decode()
    assert 'data-enabled="false"' in page
    assert 'data-enabled="true"' not in page


def test_deactivate_without_a_choice_changes_nothing(manager_client, active_profile):
    response = manager_client.post(URL, {"action": "deactivate"}, follow=True)

    assert state_of() == Profile.State.ACTIVE
    assert "Choose Pause Sync to Magento or Stop Push Notification." in response.content.decode()


def test_pausing_a_new_profile_says_why_not(manager_client, db):
    response = manager_client.post(URL, {"action": "deactivate", "mode": "pause"}, follow=True)

    assert state_of() == Profile.State.NEW
    assert "Only an active profile can be paused" in response.content.decode()


def test_viewer_sees_no_buttons_and_no_push_secret(viewer_client, active_profile):
    page = viewer_client.get(URL).content.decode()

    assert 'data-state="active"' in page
    assert active_profile.push_url in page
    assert active_profile.push_secret not in page
    assert 'id="push-secret"' not in page
    assert "data-lifecycle-buttons" not in page
    assert 'name="action"' not in page
    assert CONFIRM not in page


@pytest.mark.parametrize(
    "data",
    [
        {"action": "initialize"},
        {"action": "deactivate", "mode": "pause"},
        {"action": "deactivate", "mode": "stop"},
        {"action": "activate"},
    ],
)
def test_viewer_cannot_act(viewer_client, active_profile, data):
    assert viewer_client.post(URL, data).status_code == 403
    assert state_of() == Profile.State.ACTIVE


def test_user_without_a_role_gets_403(nobody_client, db):
    assert nobody_client.get(URL).status_code == 403
