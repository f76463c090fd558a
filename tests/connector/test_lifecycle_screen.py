"""The Initialize / Deactivate screen: state, history, push settings, the four actions, and
the Acumatica side (publishing runs with their progress, the package for a setup by hand)."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
import zipfile

import pytest
from django_celery_beat.models import IntervalSchedule

from connector.lifecycle import initialize, pause, processor_schedulers
from connector.models import AuditEntry, ProvisioningRun
from setup_params.models import Profile, create_profile, get_profile

URL = "/lifecycle/"
CONFIRM = "Are you sure you wish to initialize all features for Magento Connector?"


@pytest.fixture
def active_profile(connected_profile) -> Profile:
    """Initialized with Acumatica set up by hand: nothing published."""
    initialize(connected_profile, actor="test", manual_acumatica=True)
    return get_profile("default")


def state_of(name: str = "default") -> str:
    return Profile.objects.get(name=name).state


def test_screen_shows_state_push_settings_and_history_newest_first(
    manager_client, connected_profile
):
    initialize(connected_profile, actor="alice", manual_acumatica=True)
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


def test_initialize_by_hand_with_working_magento_activates_and_enables_schedulers(
    manager_client, connected_profile
):
    response = manager_client.post(
        URL, {"action": "initialize", "manual_acumatica": "on"}, follow=True
    )

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


# --- the Acumatica side ------------------------------------------------------------------------


def test_confirm_dialog_warns_of_the_restart_and_offers_the_manual_setup(manager_client, db):
    page = manager_client.get(URL).content.decode()

    assert "Publishing restarts the Acumatica website" in page
    assert "data-restart-warning" in page
    assert 'name="manual_acumatica"' in page
    assert "Acumatica is set up by hand (manual import)" in page
    assert "Nothing published yet." in page


def test_initialize_publishes_to_acumatica_then_activates(
    manager_client, acumatica_profile, acumatica_simulator, publish_inline
):
    response = manager_client.post(URL, {"action": "initialize"}, follow=True)

    assert state_of() == Profile.State.ACTIVE
    page = response.content.decode()
    assert "Initialize started for profile &#x27;default&#x27;" in page
    assert 'data-run-status="succeeded"' in page
    assert "Website updated." in page  # publishEnd's log, on the screen
    assert "Published MagentoConnector_default" in page
    assert sorted(acumatica_simulator.published_inquiries()) == ["MC-Inventory", "MC-Prices"]
    pushes = acumatica_simulator.published_push_notifications()
    assert [(push["name"], push["active"]) for push in pushes] == [
        ("Magento default inventory", True),
        ("Magento default price", True),
    ]
    assert acumatica_profile.push_secret not in page.replace(
        f'value="{acumatica_profile.push_secret}"', ""
    )  # only in the masked field
    entry = AuditEntry.objects.get(kind=AuditEntry.Kind.INITIALIZE)
    assert entry.actor == "manager"
    assert all(task.enabled for task in processor_schedulers(acumatica_profile))


def test_initialize_hands_the_run_to_a_worker_and_shows_it_queued(
    manager_client, acumatica_profile, monkeypatch, django_capture_on_commit_callbacks
):
    sent = []
    monkeypatch.setattr("connector.tasks.provision_acumatica.delay", sent.append)

    with django_capture_on_commit_callbacks(execute=True):
        response = manager_client.post(URL, {"action": "initialize"}, follow=True)

    run = ProvisioningRun.objects.get()
    assert sent == [run.pk]
    assert (run.action, run.status, run.started_by) == ("initialize", "queued", "manager")
    assert state_of() == Profile.State.NEW  # until the run succeeds
    page = response.content.decode()
    assert 'data-run-status="queued"' in page
    assert "the profile turns active when it is published" in page


def test_a_second_initialize_while_one_is_publishing_is_refused(
    manager_client, acumatica_profile, monkeypatch
):
    monkeypatch.setattr("connector.provisioning.start", lambda run: None)
    manager_client.post(URL, {"action": "initialize"})

    response = manager_client.post(URL, {"action": "initialize"}, follow=True)

    assert "is already publishing to Acumatica" in response.content.decode()
    assert ProvisioningRun.objects.count() == 1


def test_initialize_without_acumatica_settings_says_so_and_creates_no_run(
    manager_client, connected_profile
):
    response = manager_client.post(URL, {"action": "initialize"}, follow=True)

    assert state_of() == Profile.State.NEW
    page = response.content.decode()
    assert "Initialize stopped: no Acumatica instance URL is set" in page
    assert not ProvisioningRun.objects.exists()


def test_a_failed_publish_shows_publish_ends_log_and_leaves_the_state(
    manager_client, acumatica_profile, acumatica_simulator, publish_inline
):
    acumatica_simulator.fail_next_publish(["Compilation failed: CS0103 MC-Inventory."])

    page = manager_client.post(URL, {"action": "initialize"}, follow=True).content.decode()

    assert state_of() == Profile.State.NEW
    assert 'data-run-status="failed"' in page
    assert "Compilation failed: CS0103 MC-Inventory." in page
    assert 'data-log-type="error"' in page
    assert not processor_schedulers(acumatica_profile).exists()
    entry = AuditEntry.objects.get(kind=AuditEntry.Kind.PROVISIONING_FAILED)
    assert "the state stays New (not initialized)" in entry.detail
    assert 'data-history-kind="provisioning_failed"' in page


def test_run_json_reports_status_progress_and_log(
    viewer_client, acumatica_profile, publish_inline
):
    initialize(acumatica_profile, actor="test")

    status = viewer_client.get("/lifecycle/run.json").json()

    assert status["state"] == "active"
    run = status["run"]
    assert (run["action"], run["status"], run["finished"]) == ("initialize", "succeeded", True)
    assert run["progress"].startswith("Published MagentoConnector_default")
    messages = [entry["message"] for entry in run["log"]]
    assert "Testing the Acumatica connection." in messages
    assert "Website updated." in messages
    assert {entry["type"] for entry in run["log"]} == {"information"}
    assert acumatica_profile.push_secret not in str(status)


def test_run_json_of_a_profile_never_initialized(viewer_client, db):
    assert viewer_client.get("/lifecycle/run.json").json()["run"] is None


def test_stop_republishes_with_the_push_notifications_inactive(
    manager_client, acumatica_profile, acumatica_simulator, publish_inline
):
    initialize(acumatica_profile, actor="test")

    response = manager_client.post(URL, {"action": "deactivate", "mode": "stop"}, follow=True)

    assert state_of() == Profile.State.STOPPED
    assert [push["active"] for push in acumatica_simulator.published_push_notifications()] == [
        False,
        False,
    ]
    page = response.content.decode()
    assert "Stop started for profile" in page
    assert 'data-run-status="succeeded"' in page
    assert "are inactive" in page


def test_stop_of_a_profile_set_up_by_hand_names_the_push_notifications_to_untick(
    manager_client, active_profile
):
    response = manager_client.post(URL, {"action": "deactivate", "mode": "stop"}, follow=True)

    assert state_of() == Profile.State.STOPPED
    page = response.content.decode()
    assert "clear Active on &#x27;Magento default inventory&#x27; and " in page
    assert "&#x27;Magento default price&#x27;" in page
    assert "data-untick" in page
    assert not ProvisioningRun.objects.filter(action="stop").exists()


def test_package_download_is_the_project_with_the_secret(manager_client, connected_profile):
    response = manager_client.get("/lifecycle/package.zip")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert 'filename="MagentoConnector_default.zip"' in response["Content-Disposition"]
    with zipfile.ZipFile(io.BytesIO(response.content)) as package:
        root = ET.fromstring(package.read("project.xml"))
    hooks = root.findall(".//PushNotificationsHook/row")
    assert {hook.get("HeaderValue") for hook in hooks} == {connected_profile.push_secret}
    assert {hook.get("Active") for hook in hooks} == {"1"}


def test_screen_lists_the_manual_steps_for_managers(manager_client, db):
    page = manager_client.get(URL).content.decode()

    assert "<strong>Customization Projects</strong> (SM204505)" in page
    assert "<strong>Push Notifications</strong> (SM302000)" in page
    assert "/lifecycle/package.zip?profile=default" in page


def test_viewer_sees_no_manual_steps(viewer_client, db):
    assert "data-manual-setup" not in viewer_client.get(URL).content.decode()


def test_viewer_cannot_download_the_package(viewer_client, db):
    assert viewer_client.get("/lifecycle/package.zip").status_code == 403
