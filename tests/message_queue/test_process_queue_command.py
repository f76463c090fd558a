"""process_queue and reprocess_failed on the command line, against the Magento simulator."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from connector.models import AuditEntry
from message_queue.models import Message, Status
from setup_params.models import Profile, create_profile

BASE_PRICES = "/V1/products/base-prices"


def run(*arguments: str) -> tuple[str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    call_command(*arguments, stdout=stdout, stderr=stderr)
    return stdout.getvalue(), stderr.getvalue()


def exit_status(*arguments: str) -> tuple[int, str]:
    with pytest.raises(CommandError) as failure:
        run(*arguments)
    return failure.value.returncode, str(failure.value)


def failed_price(
    profile: Profile, sku: str, *, price: float = 5.0, status: str = "failed", entity: str = "price"
) -> Message:
    return Message.objects.create(
        profile=profile,
        entity=entity,
        key=f"{sku}|0",
        sku=sku,
        payload={"sku": sku, "price": price, "store_id": 0},
        status=status,
        attempts=3,
        last_error="HTTP 503: Service Unavailable",
    )


def statuses() -> dict[str, str]:
    return dict(Message.objects.values_list("sku", "status"))


# --- process_queue ---------------------------------------------------------------------------


def test_process_queue_once_sends_pending_prices_and_prints_the_summary(magento, push):
    magento.add_product("SKU1", price=1.0)
    magento.add_product("SKU2", price=2.0)
    push.prices([("SKU1", 5.0), ("SKU2", 7.5)])

    stdout, _ = run("process_queue", "--once", "--entity", "price")

    assert stdout == "price: 2 calls: 2 sent, 0 failed, 0 skipped, 0 to retry, 0 left\n"
    assert (magento.price_of("SKU1"), magento.price_of("SKU2")) == (5.0, 7.5)
    assert statuses() == {"SKU1": Status.SENT, "SKU2": Status.SENT}


def test_process_queue_once_without_an_entity_passes_over_each(magento, push):
    magento.add_product("SKU1", price=1.0)
    push.prices([("SKU1", 5.0), ("NOSUCHSKU", 1.0)])

    stdout, _ = run("process_queue", "--once")

    assert stdout.splitlines() == [
        "price: 2 calls: 1 sent, 0 failed, 1 skipped, 0 to retry, 0 left",
        "inventory: 0 calls: 0 sent, 0 failed, 0 skipped, 0 to retry, 0 left",
    ]
    assert statuses() == {"SKU1": Status.SENT, "NOSUCHSKU": Status.SKIPPED}


@pytest.mark.django_db(transaction=True)
def test_process_queue_runs_for_the_check_process_time(magento, push, profile):
    settings = profile.queue_settings
    settings.check_process_time, settings.process_sleep_time = 1, 1
    settings.save()
    magento.add_product("SKU1", price=1.0)
    push.prices([("SKU1", 5.0)])

    stdout, _ = run("process_queue", "--entity", "price")

    assert stdout.startswith("price: 1 calls: 1 sent,")
    assert magento.price_of("SKU1") == 5.0


@pytest.mark.parametrize("state", [Profile.State.PAUSED, Profile.State.NEW])
def test_process_queue_sends_nothing_while_the_profile_is_not_active(magento, push, profile, state):
    magento.add_product("SKU1", price=1.0)
    push.prices([("SKU1", 5.0)])
    profile.state = state
    profile.save(update_fields=["state"])

    stdout, _ = run("process_queue", "--once")

    label = profile.get_state_display().lower()
    assert stdout.splitlines() == [
        f"Nothing is sent while profile 'default' is {label}.",
        "price: 1 pending",
        "inventory: 0 pending",
    ]
    assert magento.count(BASE_PRICES) == 0
    assert statuses() == {"SKU1": Status.PENDING}


def test_process_queue_of_a_missing_profile_fails(db):
    assert exit_status("process_queue", "--once", "--profile", "nope") == (
        1,
        "No profile named 'nope'.",
    )


def test_process_queue_of_an_unknown_entity_is_bad_usage(db):
    status, reason = exit_status("process_queue", "--once", "--entity", "order")

    assert status == 2
    assert "invalid choice: 'order'" in reason


# --- reprocess_failed ------------------------------------------------------------------------


def test_reprocess_failed_all_puts_failed_and_skipped_back_to_pending(profile):
    failed_price(profile, "SKU1")
    failed_price(profile, "SKU2", status="skipped")
    failed_price(profile, "SKU3", status="sent")

    stdout, _ = run("reprocess_failed", "--all")

    assert stdout == "2 messages reprocessed.\n"
    assert statuses() == {"SKU1": Status.PENDING, "SKU2": Status.PENDING, "SKU3": Status.SENT}
    assert set(Message.objects.filter(status="pending").values_list("attempts", flat=True)) == {0}
    entry = AuditEntry.objects.get(kind=AuditEntry.Kind.REPROCESS)
    assert (entry.actor, entry.user, entry.profile) == ("cli", None, profile)


def test_reprocessed_messages_are_sent_by_the_next_pass(magento, profile):
    magento.add_product("SKU1", price=1.0)
    failed_price(profile, "SKU1", price=12.5)

    run("reprocess_failed", "--all")
    stdout, _ = run("process_queue", "--once", "--entity", "price")

    assert stdout.startswith("price: 1 calls: 1 sent,")
    assert magento.price_of("SKU1") == 12.5


def test_reprocess_failed_all_of_one_entity(profile):
    failed_price(profile, "SKU1")
    failed_price(profile, "SKU2", entity="inventory")

    stdout, _ = run("reprocess_failed", "--all", "--entity", "inventory")

    assert stdout == "1 message reprocessed.\n"
    assert statuses() == {"SKU1": Status.FAILED, "SKU2": Status.PENDING}


def test_reprocess_failed_ids_reports_and_ignores_the_others(profile):
    chosen = failed_price(profile, "SKU1")
    sent = failed_price(profile, "SKU2", status="sent")
    elsewhere = failed_price(create_profile("sandbox"), "SKU3")
    failed_price(profile, "SKU4")

    stdout, stderr = run("reprocess_failed", "--ids", f"{chosen.id},{sent.id},{elsewhere.id}")

    assert stdout == "1 message reprocessed.\n"
    assert stderr == (
        f"Ignored, not failed or skipped messages of profile 'default': "
        f"{sent.id}, {elsewhere.id}.\n"
    )
    assert statuses() == {
        "SKU1": Status.PENDING,
        "SKU2": Status.SENT,
        "SKU3": Status.FAILED,
        "SKU4": Status.FAILED,
    }


def test_reprocess_failed_ids_none_of_which_qualifies_fails(profile):
    sent = failed_price(profile, "SKU1", status="sent")

    status, reason = exit_status("reprocess_failed", "--ids", str(sent.id))

    assert (status, reason) == (1, "None of the ids is a message that can be reprocessed.")
    assert not AuditEntry.objects.filter(kind=AuditEntry.Kind.REPROCESS).exists()


@pytest.mark.parametrize(
    "arguments",
    [
        ["--ids", "1,x"],
        ["--ids", "0"],
        ["--ids", ","],
        [],
        ["--all", "--ids", "1"],
        ["--all", "--entity", "order"],
    ],
)
def test_reprocess_failed_bad_usage_exits_2(profile, arguments):
    failed_price(profile, "SKU1")

    status, _ = exit_status("reprocess_failed", *arguments)

    assert status == 2
    assert statuses() == {"SKU1": Status.FAILED}


def test_reprocess_failed_of_a_missing_profile_fails(db):
    assert exit_status("reprocess_failed", "--all", "--profile", "nope") == (
        1,
        "No profile named 'nope'.",
    )
