"""`sync_all` and `reconcile` on the command line: output, exit status (0 done, 1 failed with
the reason on stderr, 2 bad usage)."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from message_queue import pull
from message_queue.models import Entity, LoadRun, Message, ReconcileRun
from sandbox.acumatica import AcumaticaSimulator
from setup_params.models import Profile
from tests.message_queue.sync_fixtures import Clock, catalog, connected_acumatica, drain, sku


@pytest.fixture
def acumatica(profile):
    simulator = AcumaticaSimulator(catalog=False, clock=Clock())
    with connected_acumatica(simulator, profile):
        yield simulator


def run(*arguments: str) -> tuple[str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    call_command(*arguments, stdout=stdout, stderr=stderr)
    return stdout.getvalue(), stderr.getvalue()


def exit_status(*arguments: str) -> tuple[int, str]:
    with pytest.raises(CommandError) as failure:
        run(*arguments)
    return failure.value.returncode, str(failure.value)


def test_sync_all_loads_every_inquiry_and_prints_progress(acumatica, magento, profile,
                                                         monkeypatch):
    catalog(acumatica, magento, 250)
    settings = profile.acumatica_settings
    settings.page_size, settings.batch_size = 50, 50
    settings.save()
    monkeypatch.setattr("message_queue.management.commands.sync_all.PROGRESS_EVERY_SECONDS", 0)

    output, _ = run("sync_all")

    assert "inventory: reading MC-Inventory (run " in output
    assert "inventory: 50 / 334 rows (15%)" in output
    assert "price: 200 / 250 rows (80%)" in output
    assert "price: succeeded, 250 rows read, 250 keys queued in " in output
    assert output.rstrip().endswith("Initial load done: the processors send the queue.")
    assert Message.objects.filter(entity=Entity.PRICE).count() == 250
    drain()
    assert magento.price_of(sku(249)) == acumatica.price_of(sku(249))


def test_sync_all_on_a_paused_profile_says_the_queue_waits(acumatica, magento, profile):
    catalog(acumatica, magento, 3)
    Profile.objects.filter(pk=profile.pk).update(state=Profile.State.PAUSED)

    output, _ = run("sync_all")

    assert "the queue waits while profile 'default' is paused" in output
    assert Message.objects.filter(status="pending").count() == 3 + 3


def test_sync_all_loads_one_entity(acumatica, magento, profile):
    catalog(acumatica, magento, 5)

    output, _ = run("sync_all", "--entity", "price")

    assert "inventory" not in output
    assert list(LoadRun.objects.values_list("entity", "status")) == [
        (Entity.PRICE, LoadRun.Status.SUCCEEDED)
    ]


def test_sync_all_exits_1_with_acumatica_s_reason_when_a_load_fails(acumatica, profile):
    acumatica.fail_always("401")

    status, message = exit_status("sync_all", "--entity", "inventory")

    assert status == 1
    assert message.startswith("Initial load failed. inventory: ")
    assert LoadRun.objects.get().status == LoadRun.Status.FAILED


def test_sync_all_exits_1_while_the_same_load_runs(acumatica, profile):
    pull.create_run(profile, Entity.PRICE, started_by="alice")

    status, message = exit_status("sync_all", "--entity", "price")

    assert status == 1 and "already queued" in message and "alice" in message


@pytest.mark.parametrize("arguments", [("--entity", "orders"), ("--bogus",)])
def test_sync_all_exits_2_on_bad_usage(db, arguments):
    status, message = exit_status("sync_all", *arguments)

    assert status == 2 and message.startswith("Error:")


def test_sync_all_names_a_missing_profile(db):
    assert exit_status("sync_all", "--profile", "nope") == (1, "No profile named 'nope'.")


def test_reconcile_prints_the_differences_and_fix_queues_corrections(acumatica, magento, profile):
    catalog(acumatica, magento, 4)
    acumatica.clock.advance(1)
    run("sync_all")
    drain()
    with magento._lock:
        magento.catalog[sku(1)].price = 3.33
    magento.add_product("ONLYMAG", price=8, sources={"default": 6})

    output, _ = run("reconcile")
    lines = [" ".join(line.split()) for line in output.splitlines()]
    assert lines == [
        "SKU field Acumatica Magento what",
        "ONLYMAG price — 8 Not in Acumatica",
        "ONLYMAG quantity (default) — 6 Not in Acumatica",
        "SKU00001 price 5.25 3.33 Different",
        f"3 differences in 5 SKUs (report {ReconcileRun.objects.get().pk}).",
    ]
    assert Message.objects.filter(status="pending").count() == 0

    output, _ = run("reconcile", "--fix")
    drain()
    assert "1 correction queued; 2 left alone" in output
    assert "left alone: 2 × not in acumatica" in output
    assert magento.price_of(sku(1)) == 5.25
    assert "2 differences in 5 SKUs" in run("reconcile")[0]


def test_reconcile_exits_1_when_a_side_cannot_be_read(acumatica, magento, profile):
    acumatica.fail_always("401")

    status, message = exit_status("reconcile")

    assert status == 1 and message.startswith("The report failed: ")
