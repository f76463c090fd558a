"""Initial load and catch-up: Acumatica's inquiries read over OData into the queue, through the
push-notification path, then sent by the processors (DESIGN.md sections 5, 7, 9)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from connector.lifecycle import complete_stop
from message_queue import pull
from message_queue.ingest import Notification, store_notification
from message_queue.models import Entity, LoadRun, Message, PullSettings, Status
from sandbox.acumatica import AcumaticaSimulator
from setup_params.models import Profile, get_profile
from tests.message_queue.sync_fixtures import (
    Clock,
    catalog,
    connected_acumatica,
    drain,
    mismatches,
    pending_count,
    records_sent,
    sku,
)

RunStatus = LoadRun.Status


@pytest.fixture
def fast_sending(profile):
    """Big batches so draining thousands of messages takes a few hundred calls."""
    settings = profile.queue_settings
    settings.batch_count = 200
    settings.save()
    return get_profile("default")


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def acumatica(profile, clock):
    simulator = AcumaticaSimulator(catalog=False, clock=clock)
    with connected_acumatica(simulator, profile):
        yield simulator


def load(profile, entity, **kwargs) -> LoadRun:
    run = pull.create_run(profile, entity, started_by="test")
    return pull.execute(run, **kwargs)


def load_all(profile, **kwargs) -> list[LoadRun]:
    return [load(profile, entity, **kwargs) for entity in Entity.values]


def set_acumatica(profile, **values) -> Profile:
    settings = profile.acumatica_settings
    for name, value in values.items():
        setattr(settings, name, value)
    settings.save()
    return get_profile(profile.name)


def sent_more_than_once(magento) -> list:
    return [key for key, count in records_sent(magento).items() if count > 1]


# --- the initial load -----------------------------------------------------------------------


def test_initial_load_of_20000_items_makes_every_price_and_quantity_match(
    acumatica, magento, fast_sending
):
    catalog(acumatica, magento, 20_000)
    started = time.monotonic()

    runs = load_all(fast_sending)

    load_seconds = time.monotonic() - started
    assert [run.status for run in runs] == [RunStatus.SUCCEEDED] * 2, [r.error for r in runs]
    price_run, inventory_run = sorted(runs, key=lambda run: run.entity != Entity.PRICE)
    assert (price_run.read, price_run.total) == (20_000, 20_000)
    assert inventory_run.read == inventory_run.total == 20_000 + 6_667  # MAIN, every third RETAIL
    assert load_seconds < 60, f"the load took {load_seconds:.1f} s"
    drain()
    assert mismatches(acumatica, magento) == []
    sent = records_sent(magento)
    assert len(sent) == 40_000 and set(sent.values()) == {1}


def test_a_load_counts_the_rows_first_and_reports_progress_batch_by_batch(
    acumatica, magento, profile
):
    catalog(acumatica, magento, 1_234)
    profile = set_acumatica(profile, page_size=100, batch_size=300)
    seen: list[tuple[int, int | None, str]] = []

    run = load(profile, Entity.PRICE,
               on_progress=lambda run: seen.append((run.read, run.total, run.status)))

    assert run.status == RunStatus.SUCCEEDED
    assert seen[0] == (300, 1_234, RunStatus.RUNNING)
    assert [read for read, _, _ in seen] == [300, 600, 900, 1_200, 1_234, 1_234]
    assert seen[-1][2] == RunStatus.SUCCEEDED
    assert run.percent() == 100.0 and run.rate() and run.next_skip == 1_234
    # The count costs a few $top=1 probes, not a read of every row.
    probes = [entry for entry in acumatica.calls("/MC-Prices") if "$top=1&" in entry.path]
    assert 0 < len(probes) <= 2 * 12


def test_a_load_sends_each_row_as_a_push_notification_would(acumatica, magento, profile):
    acumatica.add_item("AALEGO500", price=49.99, stock={"MAIN": 1999, "RETAIL": 40})
    magento.add_product("AALEGO500", price=1, sources={"default": 0})
    profile = set_acumatica(profile, tenant="MyStore")

    load_all(profile)

    price = Message.objects.get(entity=Entity.PRICE)
    stock = Message.objects.get(entity=Entity.INVENTORY)
    assert price.key == "AALEGO500|0" and price.payload == {
        "sku": "AALEGO500", "price": 49.99, "store_id": 0
    }
    assert stock.key == "AALEGO500|default"
    assert stock.source_notification_id.startswith(f"load-{LoadRun.objects.last().pk}-0-0-")
    drain()
    assert magento.price_of("AALEGO500") == 49.99
    assert magento.quantity_of("AALEGO500") == 2039


def test_cancel_then_resume_finishes_without_sending_anything_twice(
    acumatica, magento, fast_sending
):
    catalog(acumatica, magento, 3_000)
    profile = set_acumatica(fast_sending, page_size=100, batch_size=200)
    run = pull.create_run(profile, Entity.PRICE, started_by="test")

    def cancel_after_two_batches(progress: LoadRun) -> None:
        if progress.read == 400:
            pull.cancel(progress)

    pull.execute(run, on_progress=cancel_after_two_batches)
    run.refresh_from_db()
    assert (run.status, run.read, run.next_skip) == (RunStatus.CANCELLED, 400, 400)
    drain()  # what was stored before the cancel is sent meanwhile
    assert len(records_sent(magento)) == 400

    resumed = pull.resume(run, started_by="tester")
    assert resumed.status == RunStatus.QUEUED
    pull.execute(resumed)
    run.refresh_from_db()
    drain()

    assert (run.status, run.read, run.total) == (RunStatus.SUCCEEDED, 3_000, 3_000)
    assert run.started_by == "test, tester"
    assert sent_more_than_once(magento) == []
    assert len(records_sent(magento)) == 3_000
    assert all(magento.price_of(sku(n)) == acumatica.price_of(sku(n)) for n in range(3_000))


def test_a_failed_read_keeps_what_was_stored_and_resume_continues_there(
    acumatica, magento, profile
):
    catalog(acumatica, magento, 1_000)
    profile = set_acumatica(profile, page_size=100, batch_size=100)
    run = pull.create_run(profile, Entity.INVENTORY, started_by="test")

    def fail_once(progress: LoadRun) -> None:
        if progress.read == 300 and progress.status == RunStatus.RUNNING:
            acumatica.fail_next(1, "500")

    pull.execute(run, on_progress=fail_once)
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED and "500" in run.error
    assert run.next_skip == run.read == 300

    pull.execute(pull.resume(run))
    run.refresh_from_db()
    drain()
    assert run.status == RunStatus.SUCCEEDED and run.read == 1_334
    assert sent_more_than_once(magento) == []


def test_a_page_read_again_stores_nothing_twice(acumatica, magento, profile):
    catalog(acumatica, magento, 50)
    rows = acumatica_rows(acumatica, "MC-Prices")

    first = pull.store_page(profile, Entity.PRICE, rows, id_prefix="load-9-0")
    again = pull.store_page(profile, Entity.PRICE, rows, id_prefix="load-9-0")
    other_run = pull.store_page(profile, Entity.PRICE, rows, id_prefix="load-10-0")

    assert first.keys_changed == 50
    assert again.keys_changed == other_run.keys_changed == 0
    assert other_run.already_applied == 50  # key state: that version is applied
    assert Message.objects.count() == 50


def acumatica_rows(simulator, inquiry: str) -> list[dict]:
    import json

    status, _, body = simulator.handle(
        "GET", f"/t/MyStore/api/odata/gi/{inquiry}",
        {"Host": "acumatica.test", "Authorization": basic_auth()}, b"",
    )
    assert status == 200
    return json.loads(body)["value"]


def basic_auth() -> str:
    import base64

    from sandbox.acumatica import DEFAULT_PASSWORD, DEFAULT_USERNAME

    return "Basic " + base64.b64encode(f"{DEFAULT_USERNAME}:{DEFAULT_PASSWORD}".encode()).decode()


def test_a_newer_push_notification_wins_over_the_loaded_value(acumatica, magento, profile):
    catalog(acumatica, magento, 3)
    newer = pull.row_ticks({"LastModifiedDateTime": "2100-01-01T00:00:00+00:00"}, "UTC")
    store_notification(profile, Notification(
        query=profile.price_query, notification_id="push-1", timestamp=newer,
        inserted=[{"InventoryID": sku(1), "DefaultPrice": 77}], deleted=[],
    ))

    load(profile, Entity.PRICE)

    assert Message.objects.get(sku=sku(1)).payload["price"] == 77
    drain()
    assert magento.price_of(sku(1)) == 77 and magento.price_of(sku(2)) == 5.5


def test_malformed_rows_are_left_out_and_named_on_the_run(acumatica, magento, profile):
    acumatica.add_item("GOOD1", price=3)
    acumatica.add_item("  ", price=4)

    run = load(profile, Entity.PRICE)

    assert run.status == RunStatus.SUCCEEDED and run.read == 2 and run.keys_changed == 1
    assert "Rows left out: row '': 'InventoryID' must be a non-empty string." in run.error


def test_a_second_load_of_the_same_inquiry_is_refused_while_one_runs(acumatica, profile):
    first = pull.create_run(profile, Entity.PRICE, started_by="alice")

    with pytest.raises(pull.LoadError, match="already queued .* started by alice"):
        pull.create_run(profile, Entity.PRICE, started_by="bob")
    pull.create_run(profile, Entity.INVENTORY, started_by="bob")  # the other inquiry may run
    pull.cancel(first)
    assert pull.create_run(profile, Entity.PRICE, started_by="bob").status == RunStatus.QUEUED


def test_a_run_whose_worker_died_can_be_taken_over(acumatica, magento, profile):
    catalog(acumatica, magento, 10)
    run = pull.create_run(profile, Entity.PRICE, started_by="test")
    LoadRun.objects.filter(pk=run.pk).update(
        status=RunStatus.RUNNING, updated_at=datetime.now(UTC) - timedelta(hours=1)
    )

    assert pull.execute(run).status == RunStatus.SUCCEEDED
    assert pull.execute(run).read == 10  # a second delivery of the task finds it finished


def test_an_unpublished_inquiry_fails_the_run_with_acumatica_s_answer(acumatica, profile):
    profile.price_query = "MC-Nothing"
    profile.save()

    run = load(get_profile("default"), Entity.PRICE)

    assert run.status == RunStatus.FAILED
    assert "MC-Nothing" in run.error


# --- catch-up --------------------------------------------------------------------------------


def loaded(acumatica, magento, profile, clock, count: int = 20):
    catalog(acumatica, magento, count)
    clock.advance(1)
    load_all(profile, now=clock.moment)
    drain()
    assert mismatches(acumatica, magento) == []


def test_changes_with_push_notifications_off_reach_magento_within_one_interval(
    acumatica, magento, profile, clock
):
    loaded(acumatica, magento, profile, clock)
    settings = pull.pull_settings(profile)
    assert settings.inventory_watermark is not None  # the load set the first watermark
    assert pull.run_due_catch_ups(now=clock.moment)  # the first scheduled catch-up
    clock.advance(60)
    assert acumatica.change_price(sku(3), 123.45) == []  # no push notification went out
    acumatica.change_stock(sku(4), "MAIN", 555)

    clock.advance(14 * 60 - 1)
    assert pull.run_due_catch_ups(now=clock.moment) == []  # not due yet
    clock.advance(1)
    runs = pull.run_due_catch_ups(now=clock.moment)
    drain()

    assert [(run.kind, run.status, run.read) for run in runs] == [
        (LoadRun.Kind.CATCH_UP, RunStatus.SUCCEEDED, 1)
    ] * 2
    assert magento.price_of(sku(3)) == 123.45
    assert magento.quantity_of(sku(4)) == 555
    assert mismatches(acumatica, magento) == []


@pytest.mark.parametrize(("time_offset", "arrives"), [(0, False), (30, True)])
def test_a_change_at_the_watermarks_edge_is_kept_by_the_time_offset(
    acumatica, magento, profile, clock, time_offset, arrives
):
    """A row committed after the catch-up read it, with a LastModifiedDateTime from before
    the watermark (a long transaction, or Acumatica's clock a little behind ours)."""
    loaded(acumatica, magento, profile, clock)
    profile = set_acumatica(profile, time_offset=time_offset)
    clock.advance(60)
    pull.catch_up(profile, now=clock.moment)
    watermark = pull.pull_settings(profile).price_watermark
    clock.advance(-2)
    acumatica.change_price(sku(5), 99.0)  # LastModifiedDateTime: 2 s before the watermark
    clock.advance(120)

    runs = pull.catch_up(profile, now=clock.moment)
    drain()

    assert watermark == datetime.fromtimestamp(clock.now - 118, UTC)
    assert (magento.price_of(sku(5)) == 99.0) is arrives
    assert all(run.status == RunStatus.SUCCEEDED for run in runs)


@pytest.mark.parametrize(
    ("watermark", "change"),
    [
        # Fall back (America/New_York, 2025-11-02): 01:20 EDT, then 01:10 EST, 50 min later.
        (datetime(2025, 11, 2, 5, 20, tzinfo=UTC), datetime(2025, 11, 2, 6, 10, tzinfo=UTC)),
        # Spring forward (2025-03-09): 01:50 EST, then 03:10 EDT, 20 min later.
        (datetime(2025, 3, 9, 6, 50, tzinfo=UTC), datetime(2025, 3, 9, 7, 10, tzinfo=UTC)),
    ],
    ids=["fall-back", "spring-forward"],
)
def test_catch_up_across_a_daylight_saving_change_in_the_profile_s_time_zone(
    acumatica, magento, profile, clock, watermark, change
):
    clock.now = (watermark - timedelta(hours=1)).timestamp()
    loaded(acumatica, magento, profile, clock)
    clock.now = watermark.timestamp()
    pull.catch_up(profile, now=clock.moment)
    assert pull.pull_settings(profile).inventory_watermark == watermark
    clock.now = change.timestamp()
    acumatica.change_stock(sku(6), "MAIN", 321)  # an earlier wall-clock time at fall-back

    clock.advance(300)
    runs = pull.catch_up(profile, now=clock.moment)
    drain()

    inventory = next(run for run in runs if run.entity == Entity.INVENTORY)
    assert inventory.read == 1
    assert magento.quantity_of(sku(6)) == 321 + 2
    assert pull.pull_settings(profile).inventory_watermark == change + timedelta(seconds=300)


def test_values_already_applied_produce_no_new_message(acumatica, magento, profile, clock):
    loaded(acumatica, magento, profile, clock)
    messages = Message.objects.count()

    clock.advance(60)
    runs = pull.catch_up_since(profile, clock.moment() - timedelta(days=1), now=clock.moment)

    assert sum(run.read for run in runs) == 20 + 27  # every price row and stock row
    assert sum(run.keys_changed for run in runs) == 0
    assert Message.objects.count() == messages and pending_count(profile) == 0


def test_changes_made_while_stopped_arrive_after_initialize(acumatica, magento, profile, clock):
    loaded(acumatica, magento, profile, clock)
    pull.run_due_catch_ups(now=clock.moment)
    clock.advance(60)
    complete_stop(profile, actor="test")
    stopped = get_profile("default")
    stop_moment = stopped.state_changed_at
    clock.now = stop_moment.timestamp() + 60
    acumatica.change_price(sku(7), 42.0)
    acumatica.change_stock(sku(8), "RETAIL", 9)
    clock.advance(3600)
    assert pull.run_due_catch_ups(now=clock.moment) == []  # the schedulers are off

    runs = pull.catch_up_since(stopped, stop_moment, started_by="initialize", now=clock.moment)
    Profile.objects.filter(pk=profile.pk).update(state=Profile.State.ACTIVE)
    drain()

    assert all(run.since <= stop_moment for run in runs)  # or the older watermark
    assert magento.price_of(sku(7)) == 42.0
    assert magento.quantity_of(sku(8)) == 8 + 9  # MAIN, and RETAIL new


def test_queue_catch_up_since_hands_one_run_per_entity_to_a_worker(
    acumatica, profile, monkeypatch, django_capture_on_commit_callbacks
):
    started: list[LoadRun] = []
    monkeypatch.setattr(pull, "start", started.append)
    moment = datetime(2025, 6, 1, 12, tzinfo=UTC)
    PullSettings.objects.update_or_create(
        profile=profile, defaults={"price_watermark": moment - timedelta(hours=1)}
    )

    runs = pull.queue_catch_up_since(profile, moment, started_by="initialize")

    assert started == runs and {run.status for run in runs} == {RunStatus.QUEUED}
    assert {run.entity: run.since for run in runs} == {
        Entity.INVENTORY: moment, Entity.PRICE: moment - timedelta(hours=1)
    }


def test_scheduled_catch_up_needs_tracking_by_date_and_an_active_or_paused_profile(
    acumatica, profile, clock
):
    settings = pull.pull_settings(profile)
    settings.tracking = PullSettings.Tracking.NONE
    settings.save()
    assert pull.run_due_catch_ups(now=clock.moment) == []

    settings.tracking = PullSettings.Tracking.DATE
    settings.save()
    Profile.objects.filter(pk=profile.pk).update(state=Profile.State.NEW)
    assert pull.run_due_catch_ups(now=clock.moment) == []

    Profile.objects.filter(pk=profile.pk).update(state=Profile.State.PAUSED)
    instance_url = profile.acumatica_settings.instance_url
    set_acumatica(profile, instance_url="")  # push notifications only: nothing to read
    assert pull.run_due_catch_ups(now=clock.moment) == []

    set_acumatica(profile, instance_url=instance_url)
    assert len(pull.run_due_catch_ups(now=clock.moment)) == 2
    assert pull.run_due_catch_ups(now=clock.moment) == []  # claimed: not due again at once
    assert Status.PENDING not in Message.objects.values_list("status", flat=True)


# --- the Loads & reconciliation screen ----------------------------------------------------------


@pytest.fixture
def started(monkeypatch) -> list[LoadRun]:
    """Runs handed to a worker (none runs: the test runs them)."""
    handed: list[LoadRun] = []
    monkeypatch.setattr(pull, "start", handed.append)
    return handed


def test_the_screen_starts_an_initial_load_of_both_inquiries(acumatica, manager_client, started):
    response = manager_client.post(reverse("sync"), {"action": "load", "entity": "all"},
                                   follow=True)

    assert "Initial load of Pricing and Inventory started" in response.content.decode()
    assert [(run.entity, run.status, run.started_by) for run in started] == [
        (Entity.PRICE, RunStatus.QUEUED, "manager"), (Entity.INVENTORY, RunStatus.QUEUED, "manager")
    ]
    again = manager_client.post(reverse("sync"), {"action": "load", "entity": "price"},
                                follow=True)
    assert "is already queued" in again.content.decode()


def test_progress_json_tells_read_total_rate_and_time_left(acumatica, magento, profile,
                                                          viewer_client):
    catalog(acumatica, magento, 120)
    set_acumatica(profile, page_size=50, batch_size=50)
    snapshots = []

    def look(run: LoadRun) -> None:
        snapshots.append(viewer_client.get(reverse("sync_runs")).json()["runs"][0])

    load(get_profile("default"), Entity.PRICE, on_progress=look)

    first, last = snapshots[0], snapshots[-1]
    assert (first["read"], first["total"], first["percent"], first["status"]) == (
        50, 120, 41.7, "running"
    )
    assert first["rate"] > 0 and first["seconds_left"] is not None
    assert (last["read"], last["percent"], last["status"], last["seconds_left"]) == (
        120, 100.0, "succeeded", None
    )


def test_cancel_and_resume_from_the_screen(acumatica, profile, manager_client, started):
    run = pull.create_run(profile, Entity.PRICE, started_by="test")
    LoadRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING, read=10, next_skip=10)

    manager_client.post(reverse("sync"), {"action": "cancel", "run": run.pk})
    run.refresh_from_db()
    assert run.cancel_requested and run.status == RunStatus.RUNNING  # stops after its page
    LoadRun.objects.filter(pk=run.pk).update(status=RunStatus.CANCELLED)

    response = manager_client.post(reverse("sync"), {"action": "resume", "run": run.pk},
                                   follow=True)

    assert "resumes at row 10" in response.content.decode()
    assert [resumed.pk for resumed in started] == [run.pk]
    run.refresh_from_db()
    assert (run.status, run.cancel_requested) == (RunStatus.QUEUED, False)


def test_the_catch_up_settings_are_saved_and_checked(acumatica, profile, manager_client):
    url = reverse("sync")
    bad = manager_client.post(url, {"action": "settings", "tracking": "date",
                                    "interval_minutes": 0})
    assert bad.status_code == 200 and "greater than or equal to 1" in bad.content.decode()

    manager_client.post(url, {"action": "settings", "tracking": "none", "interval_minutes": 5})

    settings = pull.pull_settings(profile)
    assert (settings.tracking, settings.interval_minutes) == ("none", 5)


def test_catch_up_now_queues_a_catch_up_per_entity(acumatica, manager_client, started):
    manager_client.post(reverse("sync"), {"action": "catch_up"})

    assert {(run.kind, run.entity) for run in started} == {
        (LoadRun.Kind.CATCH_UP, Entity.PRICE), (LoadRun.Kind.CATCH_UP, Entity.INVENTORY)
    }


def test_viewers_see_the_runs_but_cannot_start_cancel_or_change(acumatica, profile,
                                                                viewer_client):
    run = pull.create_run(profile, Entity.PRICE, started_by="test")

    page = viewer_client.get(reverse("sync"))
    assert page.status_code == 200 and f'data-run="{run.pk}"' in page.content.decode()
    assert "Start initial load" not in page.content.decode()
    for action in ({"action": "load"}, {"action": "cancel", "run": run.pk},
                   {"action": "settings", "tracking": "none", "interval_minutes": 5}):
        assert viewer_client.post(reverse("sync"), action).status_code == 403
