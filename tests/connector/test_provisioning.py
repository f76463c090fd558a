"""Initialize and Stop, Acumatica side: the customization project published through the
Customization API of the served Acumatica simulator, and what Acumatica then sends."""

from __future__ import annotations

import io
import json
import uuid
import xml.etree.ElementTree as ET
import zipfile
from datetime import timedelta

import pytest
import requests
from django.core.management.sql import emit_post_migrate_signal
from django.utils import timezone

from connector import provisioning
from connector.acumatica import LOGIN_LIMIT_TEXT
from connector.lifecycle import LifecycleError, initialize, processor_schedulers, stop
from connector.models import AuditEntry, ProvisioningRun
from connector.provisioning import run_provisioning
from connector.tasks import provision_acumatica
from sandbox.acumatica import DEFAULT_PASSWORD, DEFAULT_TENANT, DEFAULT_USERNAME
from sandbox.magento import DEFAULT_TOKEN
from setup_params.models import Profile, get_profile
from tests.connector.conftest import connect_acumatica
from tests.helpers import wait_for

Status = ProvisioningRun.Status


def state_of(name: str = "default") -> str:
    return Profile.objects.get(name=name).state


def last_run() -> ProvisioningRun:
    return ProvisioningRun.objects.first()


@pytest.fixture
def posts(acumatica_simulator) -> list[tuple[str, dict, dict]]:
    """What the simulator's push notifications post: (address, headers, body); answered 200."""
    sent: list[tuple[str, dict, dict]] = []

    def post(url: str, body: bytes, headers: dict[str, str]) -> int:
        sent.append((url, headers, json.loads(body)))
        return 200

    acumatica_simulator.post = post
    return sent


# --- acceptance ------------------------------------------------------------------------------


def test_five_initializations_in_a_row_with_one_seat_never_meet_the_login_limit(
    acumatica_profile, acumatica_simulator, publish_inline
):
    assert acumatica_simulator.api_seats == 1
    acumatica_simulator.publish_drops_sessions = False  # only a sign-out frees the seat

    for _ in range(5):
        initialize(get_profile("default"), actor="test")
        assert last_run().status == Status.SUCCEEDED, last_run().log
        assert acumatica_simulator.seats_in_use == 0

    logins = acumatica_simulator.calls("/entity/auth/login")
    assert [login.status for login in logins] == [204] * 10  # test connection + publish, each
    assert acumatica_simulator.count("/entity/auth/logout") == 10
    assert LOGIN_LIMIT_TEXT not in json.dumps([login.response_json for login in logins])
    assert ProvisioningRun.objects.filter(status=Status.SUCCEEDED).count() == 5


def test_initialize_publishes_both_inquiries_and_both_push_notifications(
    acumatica_profile, acumatica_simulator, publish_inline
):
    initialize(acumatica_profile, actor="test")

    assert state_of() == Profile.State.ACTIVE
    project = acumatica_simulator.projects["MagentoConnector_default"]
    with zipfile.ZipFile(io.BytesIO(project.content)) as package:
        root = ET.fromstring(package.read("project.xml"))
    assert {row.get("Name") for row in root.findall(".//GIDesign/row")} == {
        "MC-Inventory",
        "MC-Prices",
    }
    assert {
        (hook.get("Name"), hook.get("Address"), hook.get("HeaderName"), hook.get("HeaderValue"))
        for hook in root.findall(".//PushNotificationsHook/row")
    } == {
        ("Magento default inventory", acumatica_profile.push_url, "X-Connector-Secret",
         acumatica_profile.push_secret),
        ("Magento default price", acumatica_profile.push_url, "X-Connector-Secret",
         acumatica_profile.push_secret),
    }
    assert acumatica_simulator.published == ["MagentoConnector_default"]
    assert sorted(acumatica_simulator.published_inquiries()) == ["MC-Inventory", "MC-Prices"]
    assert acumatica_simulator.published_push_notifications() == [
        {
            "name": "Magento default inventory",
            "address": acumatica_profile.push_url,
            "header_name": "X-Connector-Secret",
            "header_value": acumatica_profile.push_secret,
            "active": True,
            "inquiry": "MC-Inventory",
        },
        {
            "name": "Magento default price",
            "address": acumatica_profile.push_url,
            "header_name": "X-Connector-Secret",
            "header_value": acumatica_profile.push_secret,
            "active": True,
            "inquiry": "MC-Prices",
        },
    ]
    # The published inquiries answer over OData (the catch-up reads them).
    odata = requests.get(
        f"{acumatica_simulator.url}/t/{DEFAULT_TENANT}/api/odata/gi/MC-Inventory",
        auth=(DEFAULT_USERNAME, DEFAULT_PASSWORD),
        timeout=5,
    )
    assert odata.status_code == 200
    assert {"InventoryID", "Warehouse", "QtyAvailable"} <= set(odata.json()["value"][0])


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_change_in_acumatica_reaches_magento_through_the_receiver_and_a_worker(
    acumatica_simulator, magento_simulator, fast_publishing, live_server, settings,
    celery_processes, redis_url,
):
    from connector.celery import app

    # The default profile and the roles, whichever transactional test flushed the tables last.
    emit_post_migrate_signal(verbosity=0, interactive=False, db="default")
    settings.CONNECTOR_BASE_URL = live_server.url
    profile = get_profile("default")
    magento = profile.magento_settings
    magento.magento_url, magento.token, magento.timeout = magento_simulator.url, DEFAULT_TOKEN, 5
    magento.save()
    connect_acumatica(profile, acumatica_simulator)
    queue = profile.queue_settings
    queue.check_process_time, queue.process_sleep_time = 2, 1
    queue.save()
    magento_simulator.add_product("AALEGO500", price=49.99, sources={"default": 1999})
    # A queue of its own: other test runs on the same Redis database must not take the tasks.
    queue_name = f"test-provisioning-{uuid.uuid4().hex[:8]}"
    worker = celery_processes("worker", "-Q", queue_name)

    initialize(get_profile("default"), actor="test", start=run_provisioning)

    assert state_of() == Profile.State.ACTIVE, last_run().log
    assert {push["address"] for push in acumatica_simulator.published_push_notifications()} == {
        f"{live_server.url}/acumatica/push/default/"
    }
    deliveries = acumatica_simulator.change_stock("AALEGO500", "MAIN", 1500)
    deliveries += acumatica_simulator.change_price("AALEGO500", 39.99)
    assert [(delivery.push_notification, delivery.status) for delivery in deliveries] == [
        ("Magento default inventory", 200),
        ("Magento default price", 200),
    ]
    with app.connection_for_write(redis_url) as connection:
        for entity in ("inventory", "price"):
            app.send_task("message_queue.tasks.run_processor", args=["default", entity],
                          queue=queue_name, connection=connection)
    try:
        wait_for(
            lambda: magento_simulator.quantity_of("AALEGO500") == 1500
            and magento_simulator.price_of("AALEGO500") == 39.99,
            timeout=60,
            message="the worker to send the changes to Magento",
        )
    except AssertionError as error:
        raise AssertionError(f"{error}; the worker's log:\n{worker.output()}") from None


def test_stop_republishes_inactive_and_acumatica_sends_nothing_more_until_initialize(
    acumatica_profile, acumatica_simulator, publish_inline, posts
):
    initialize(acumatica_profile, actor="test")
    acumatica_simulator.change_price("AALEGO500", 45.0)
    assert len(posts) == 1

    result = stop(get_profile("default"), actor="test")

    assert result.run.status == Status.SUCCEEDED and result.untick == []
    assert state_of() == Profile.State.STOPPED
    assert not any(task.enabled for task in processor_schedulers(acumatica_profile))
    assert [push["active"] for push in acumatica_simulator.published_push_notifications()] == [
        False,
        False,
    ]
    assert acumatica_simulator.change_price("AALEGO500", 46.0) == []
    assert acumatica_simulator.change_stock("AALEGO500", "MAIN", 7) == []
    assert len(posts) == 1

    initialize(get_profile("default"), actor="test")

    assert state_of() == Profile.State.ACTIVE
    assert [push["active"] for push in acumatica_simulator.published_push_notifications()] == [
        True,
        True,
    ]
    acumatica_simulator.change_stock("AALEGO500", "MAIN", 8)
    address, headers, body = posts[-1]
    assert (address, body["Query"]) == (acumatica_profile.push_url, "MC-Inventory")
    assert headers["X-Connector-Secret"] == acumatica_profile.push_secret
    assert len(posts) == 2


def test_a_failed_publish_keeps_publish_ends_log_and_leaves_the_state(
    acumatica_profile, acumatica_simulator, publish_inline
):
    acumatica_simulator.fail_next_publish(["Compilation failed.", "CS0103: 'qtyAvail'"])

    initialize(acumatica_profile, actor="test")

    run = last_run()
    assert run.status == Status.FAILED
    assert run.progress == (
        "Initialize failed: Publishing MagentoConnector_default failed: "
        "Compilation failed.; CS0103: 'qtyAvail'"
    )
    errors = [entry["message"] for entry in run.log if entry["type"] == "error"]
    assert errors[:2] == ["Compilation failed.", "CS0103: 'qtyAvail'"]  # publishEnd's own
    assert state_of() == Profile.State.NEW
    assert not processor_schedulers(acumatica_profile).exists()
    assert not AuditEntry.objects.filter(kind=AuditEntry.Kind.INITIALIZE).exists()
    audit = AuditEntry.objects.get(kind=AuditEntry.Kind.PROVISIONING_FAILED)
    assert audit.actor == "test"
    assert "Compilation failed." in audit.detail
    assert acumatica_simulator.seats_in_use == 0


def test_a_failed_stop_leaves_the_push_notifications_and_the_state(
    acumatica_profile, acumatica_simulator, publish_inline
):
    initialize(acumatica_profile, actor="test")
    acumatica_simulator.fail_next_publish()

    stop(get_profile("default"), actor="test")

    assert last_run().status == Status.FAILED
    assert state_of() == Profile.State.ACTIVE
    assert all(push["active"] for push in acumatica_simulator.published_push_notifications())
    assert all(task.enabled for task in processor_schedulers(acumatica_profile))


# --- the run: progress, claiming, the task --------------------------------------------------


def test_progress_and_log_are_saved_on_every_poll_of_publish_end(
    acumatica_profile, acumatica_simulator
):
    acumatica_simulator.publish_polls = 3
    seen: list[tuple[str, str]] = []

    def record(run: ProvisioningRun) -> None:
        stored = ProvisioningRun.objects.get(pk=run.pk)  # what the screen would read now
        assert (stored.progress, stored.log) == (run.progress, run.log)
        seen.append((stored.status, stored.progress))

    initialize(acumatica_profile, actor="test",
               start=lambda run: run_provisioning(run, poll_interval=0, on_progress=record))

    polls = [progress for status, progress in seen if "(check " in progress]
    assert polls == [
        "Publishing MagentoConnector_default (check 1): Publishing step 1 of 3.",
        "Publishing MagentoConnector_default (check 2): Publishing step 2 of 3.",
        "Publishing MagentoConnector_default (check 3): Publishing step 3 of 3.",
        "Publishing MagentoConnector_default (check 4): Website updated.",
    ]
    assert {status for status, _ in seen[:-1]} == {Status.RUNNING}
    assert seen[-1][0] == Status.SUCCEEDED


def test_the_celery_task_runs_the_run_once_even_if_delivered_twice(
    acumatica_profile, acumatica_simulator, monkeypatch
):
    monkeypatch.setattr(provisioning, "start", lambda run: None)
    result = initialize(acumatica_profile, actor="test")
    assert result.run.status == Status.QUEUED and state_of() == Profile.State.NEW

    provision_acumatica(result.run.pk)
    provision_acumatica(result.run.pk)  # Celery delivers at least once

    assert last_run().status == Status.SUCCEEDED
    assert state_of() == Profile.State.ACTIVE
    assert acumatica_simulator.count("/CustomizationApi/publishBegin") == 1


def test_a_taken_api_seat_fails_the_run_with_the_login_limit_advice_and_one_try(
    acumatica_profile, acumatica_simulator, publish_inline
):
    other = requests.post(
        f"{acumatica_simulator.url}/entity/auth/login",
        json={"name": DEFAULT_USERNAME, "password": DEFAULT_PASSWORD, "tenant": DEFAULT_TENANT},
        timeout=5,
    )
    assert other.status_code == 204  # another integration holds the only seat
    acumatica_simulator.reset_log()

    initialize(acumatica_profile, actor="test")

    run = last_run()
    assert run.status == Status.FAILED
    assert "every API-user seat of its license is in use" in run.progress
    assert "SM604000" in run.progress
    assert acumatica_simulator.login_attempts == 1
    assert state_of() == Profile.State.NEW


def test_secrets_never_reach_the_log(acumatica_profile, acumatica_simulator, publish_inline):
    secret = acumatica_profile.push_secret
    acumatica_simulator.fail_next_publish([f"Header value {secret} rejected"])

    initialize(acumatica_profile, actor="test")

    stored = json.dumps(last_run().log) + last_run().progress
    assert secret not in stored
    assert "Header value •••• rejected" in stored
    assert secret not in AuditEntry.objects.get(kind="provisioning_failed").detail


def test_a_run_in_progress_blocks_another_until_it_is_abandoned(
    acumatica_profile, monkeypatch
):
    monkeypatch.setattr(provisioning, "start", lambda run: None)
    first = initialize(acumatica_profile, actor="test").run

    with pytest.raises(LifecycleError, match="is already publishing to Acumatica"):
        initialize(get_profile("default"), actor="test")

    ProvisioningRun.objects.filter(pk=first.pk).update(
        created_at=timezone.now() - provisioning.ABANDONED_AFTER - timedelta(minutes=1)
    )
    second = initialize(get_profile("default"), actor="test").run
    first.refresh_from_db()
    assert first.status == Status.FAILED
    assert first.progress == "No worker finished this run: it was given up."
    assert second.status == Status.QUEUED


def test_initialize_without_a_customizer_sign_in_is_refused_before_any_run(acumatica_profile):
    settings = acumatica_profile.acumatica_settings
    settings.password = ""
    settings.save()

    with pytest.raises(LifecycleError, match="needs the user name and password of an Acumatica"):
        initialize(get_profile("default"), actor="test")

    assert not ProvisioningRun.objects.exists()


def test_a_customization_user_without_the_customizer_role_fails_the_run(
    acumatica_profile, acumatica_simulator, publish_inline
):
    acumatica_simulator.add_user("clerk", "clerk-password")
    settings = acumatica_profile.acumatica_settings
    settings.username, settings.password = "clerk", "clerk-password"
    settings.save()

    initialize(get_profile("default"), actor="test")

    assert last_run().status == Status.FAILED
    assert state_of() == Profile.State.NEW
    assert acumatica_simulator.seats_in_use == 0


# --- set up by hand ---------------------------------------------------------------------------


def test_initialize_by_hand_publishes_nothing_and_stop_names_what_to_untick(
    connected_profile, acumatica_simulator
):
    connect_acumatica(connected_profile, acumatica_simulator)

    result = initialize(connected_profile, actor="test", manual_acumatica=True)

    assert result.run is None
    assert state_of() == Profile.State.ACTIVE
    run = last_run()
    assert (run.action, run.manual, run.status) == ("initialize", True, Status.SUCCEEDED)
    assert provisioning.set_up_by_hand(connected_profile)

    stopped = stop(get_profile("default"), actor="test")

    assert stopped.run is None
    assert stopped.untick == ["Magento default inventory", "Magento default price"]
    assert state_of() == Profile.State.STOPPED
    assert acumatica_simulator.requests == []


def test_a_profile_never_initialized_through_the_connector_counts_as_set_up_by_hand(
    connected_profile,
):
    assert provisioning.set_up_by_hand(connected_profile)


@pytest.mark.django_db
def test_initialize_after_a_stop_queues_a_catch_up_since_the_stop():
    from datetime import timedelta

    from django.utils import timezone

    from connector.lifecycle import complete_initialize
    from message_queue.models import LoadRun
    from setup_params.models import Profile, get_profile

    stopped_at = timezone.now() - timedelta(hours=3)
    Profile.objects.filter(name="default").update(state="stopped", state_changed_at=stopped_at)
    complete_initialize(get_profile(), actor="test")  # the runs start after commit

    runs = LoadRun.objects.filter(profile__name="default")
    assert sorted(runs.values_list("entity", flat=True)) == ["inventory", "price"]
    assert all(run.since == stopped_at for run in runs)
    assert get_profile().state == "active"
