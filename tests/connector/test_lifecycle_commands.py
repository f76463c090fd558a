"""initialize, activate and deactivate on the command line: output, audit and exit status."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest
from django.core.management import CommandError, call_command

from connector.lifecycle import initialize, processor_schedulers
from connector.models import AuditEntry
from setup_params.models import Profile, get_profile
from tests.helpers import PROJECT_DIR, subprocess_environment

CONFIRM = "Are you sure you wish to initialize all features for Magento Connector? [y/N] "


def run(*arguments: str) -> tuple[str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    call_command(*arguments, stdout=stdout, stderr=stderr)
    return stdout.getvalue(), stderr.getvalue()


def exit_status(*arguments: str) -> tuple[int, str]:
    with pytest.raises(CommandError) as failure:
        run(*arguments)
    return failure.value.returncode, str(failure.value)


def manage_py(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *arguments],
        cwd=PROJECT_DIR,
        env=subprocess_environment(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def active_profile(connected_profile) -> Profile:
    """Initialized with Acumatica set up by hand: nothing published."""
    initialize(connected_profile, actor="test", manual_acumatica=True)
    return get_profile("default")


def state_of(name: str = "default") -> str:
    return Profile.objects.get(name=name).state


# --- initialize ------------------------------------------------------------------------------


def test_initialize_with_yes_publishes_and_prints_what_acumatica_sends(
    acumatica_profile, acumatica_simulator
):
    stdout, _ = run("initialize", "--yes")

    assert state_of() == Profile.State.ACTIVE
    assert "Connected to Magento" in stdout
    assert "  Testing the Acumatica connection." in stdout
    assert "  Publishing MagentoConnector_default (check 1): Publishing step 1 of 2." in stdout
    assert "  Published MagentoConnector_default: push notifications " in stdout
    assert f"Address:      {acumatica_profile.push_url}" in stdout
    assert "Header Name:  X-Connector-Secret" in stdout
    assert f"Header Value: {acumatica_profile.push_secret}" in stdout
    assert all(task.enabled for task in processor_schedulers(acumatica_profile))
    assert all(push["active"] for push in acumatica_simulator.published_push_notifications())
    entry = AuditEntry.objects.get(kind=AuditEntry.Kind.INITIALIZE)
    assert (entry.actor, entry.user) == ("cli", None)
    assert entry.detail.startswith("Published MagentoConnector_default")


def test_initialize_with_a_failed_publish_exits_1_with_publish_ends_log(
    acumatica_profile, acumatica_simulator
):
    acumatica_simulator.fail_next_publish(["Compilation failed.", "CS0103: no such field"])

    status, reason = exit_status("initialize", "--yes")

    assert status == 1
    assert reason.startswith(
        "Initialize failed: Publishing MagentoConnector_default failed: Compilation failed.; "
        "CS0103: no such field"
    )
    assert " error: Compilation failed." in reason
    assert " information: Publishing step 2 of 2." in reason
    assert "The profile's state is unchanged: New (not initialized)." in reason
    assert state_of() == Profile.State.NEW
    assert not processor_schedulers(acumatica_profile).exists()


def test_initialize_manual_acumatica_is_recorded(connected_profile):
    stdout, _ = run("initialize", "--yes", "--manual-acumatica")

    assert "by hand" in stdout
    entry = AuditEntry.objects.get(kind=AuditEntry.Kind.INITIALIZE)
    assert entry.detail == "Acumatica side set up by hand."


def test_initialize_without_yes_and_without_a_terminal_is_bad_usage(connected_profile):
    status, reason = exit_status("initialize")

    assert status == 2
    assert "confirm with --yes" in reason
    assert state_of() == Profile.State.NEW


def test_initialize_asks_on_a_terminal_after_warning_of_the_restart(
    acumatica_profile, monkeypatch
):
    questions = []
    monkeypatch.setattr(sys, "stdin", Terminal())
    monkeypatch.setattr("builtins.input", lambda prompt: questions.append(prompt) or "y")

    stdout, _ = run("initialize")

    assert questions == [CONFIRM]
    assert stdout.startswith("Publishing restarts the Acumatica website")
    assert state_of() == Profile.State.ACTIVE


def test_initialize_answered_no_changes_nothing(connected_profile, monkeypatch):
    monkeypatch.setattr(sys, "stdin", Terminal())
    monkeypatch.setattr("builtins.input", lambda prompt: "")

    status, reason = exit_status("initialize")

    assert (status, reason) == (1, "Initialize cancelled: nothing changed.")
    assert state_of() == Profile.State.NEW


def test_initialize_against_magento_refusing_the_token_fails(connected_profile):
    settings = connected_profile.magento_settings
    settings.token = "wrong-token"
    settings.save()

    status, reason = exit_status("initialize", "--yes")

    assert status == 1
    assert reason.startswith("Initialize stopped: Magento refused the access token (HTTP 401")
    assert state_of() == Profile.State.NEW


@pytest.mark.parametrize(
    "command",
    [["initialize", "--yes"], ["activate"], ["deactivate", "--stop"]],
)
def test_a_missing_profile_fails(db, command):
    assert exit_status(*command, "--profile", "nope") == (1, "No profile named 'nope'.")


# --- activate and deactivate -----------------------------------------------------------------


def test_deactivate_pause_then_activate(active_profile):
    stdout, _ = run("deactivate", "--pause")
    assert "is paused" in stdout
    assert state_of() == Profile.State.PAUSED

    stdout, _ = run("activate")
    assert "is active" in stdout
    assert state_of() == Profile.State.ACTIVE
    assert list(AuditEntry.objects.values_list("kind", "actor"))[:2] == [
        ("activate", "cli"),
        ("pause", "cli"),
    ]


def test_deactivate_stop_of_a_profile_set_up_by_hand_names_what_to_untick(active_profile):
    stdout, _ = run("deactivate", "--stop")

    assert "is stopped" in stdout
    assert (
        "on its Push Notifications form (SM302000), clear Active on "
        "'Magento default inventory' and 'Magento default price'." in stdout
    )
    assert state_of() == Profile.State.STOPPED
    assert not any(task.enabled for task in processor_schedulers(active_profile))
    assert AuditEntry.objects.filter(kind=AuditEntry.Kind.STOP, actor="cli").exists()


def test_deactivate_stop_republishes_the_push_notifications_inactive(
    acumatica_profile, acumatica_simulator
):
    run("initialize", "--yes")

    stdout, _ = run("deactivate", "--stop")

    assert "  Published MagentoConnector_default: push notifications " in stdout
    assert "are inactive." in stdout
    assert "is stopped" in stdout
    assert state_of() == Profile.State.STOPPED
    assert not any(push["active"] for push in acumatica_simulator.published_push_notifications())


def test_deactivate_stop_with_a_failed_publish_exits_1_and_stays_active(
    acumatica_profile, acumatica_simulator
):
    run("initialize", "--yes")
    acumatica_simulator.fail_next_publish()

    status, reason = exit_status("deactivate", "--stop")

    assert status == 1
    assert "Stop failed: Publishing MagentoConnector_default failed: Compilation failed." in reason
    assert state_of() == Profile.State.ACTIVE
    assert all(push["active"] for push in acumatica_simulator.published_push_notifications())


def test_deactivate_stop_manual_acumatica_publishes_nothing(
    acumatica_profile, acumatica_simulator
):
    run("initialize", "--yes")
    acumatica_simulator.reset_log()

    stdout, _ = run("deactivate", "--stop", "--manual-acumatica")

    assert "clear Active on 'Magento default inventory'" in stdout
    assert state_of() == Profile.State.STOPPED
    assert acumatica_simulator.requests == []


def test_activating_an_active_profile_fails(active_profile):
    status, reason = exit_status("activate")

    assert status == 1
    assert reason.startswith("Only a paused profile can be activated")


def test_pausing_a_new_profile_fails(db):
    status, reason = exit_status("deactivate", "--pause")

    assert status == 1
    assert reason.startswith("Only an active profile can be paused")


@pytest.mark.parametrize(
    "arguments",
    [["deactivate"], ["deactivate", "--pause", "--stop"], ["activate", "--bogus"]],
)
def test_bad_usage_exits_2(db, arguments):
    status, _ = exit_status(*arguments)

    assert status == 2
    assert state_of() == Profile.State.NEW


# --- real processes: what a shell script sees -------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_manage_py_initialize_without_yes_and_without_a_terminal_exits_2():
    finished = manage_py("initialize")

    assert finished.returncode == 2, finished.stderr
    assert "confirm with --yes" in finished.stderr
    assert state_of() == Profile.State.NEW


@pytest.mark.django_db(transaction=True)
def test_manage_py_deactivate_with_both_flags_exits_2():
    finished = manage_py("deactivate", "--pause", "--stop")

    assert finished.returncode == 2, finished.stderr
    assert "not allowed with argument" in finished.stderr


@pytest.mark.django_db(transaction=True)
def test_manage_py_initialize_of_a_missing_profile_exits_1():
    finished = manage_py("initialize", "--yes", "--profile", "nope")

    assert finished.returncode == 1
    assert "No profile named 'nope'." in finished.stderr


@pytest.mark.django_db(transaction=True)
def test_manage_py_initialize_with_yes_publishes_and_activates(
    acumatica_profile, acumatica_simulator
):
    acumatica_simulator.publish_polls = 0  # the subprocess polls every 5 s

    finished = manage_py("initialize", "--yes")

    assert finished.returncode == 0, finished.stderr
    assert "  Testing the Acumatica connection." in finished.stdout
    assert f"Header Value: {acumatica_profile.push_secret}" in finished.stdout
    assert state_of() == Profile.State.ACTIVE
    assert acumatica_simulator.seats_in_use == 0


@pytest.mark.django_db(transaction=True)
def test_manage_py_initialize_with_a_failed_publish_exits_1(
    acumatica_profile, acumatica_simulator
):
    acumatica_simulator.publish_polls = 0
    acumatica_simulator.fail_next_publish(["Compilation failed."])

    finished = manage_py("initialize", "--yes")

    assert finished.returncode == 1, finished.stdout
    assert "Publishing MagentoConnector_default failed: Compilation failed." in finished.stderr
    assert "error: Compilation failed." in finished.stderr
    assert state_of() == Profile.State.NEW
