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
    initialize(connected_profile, actor="test")
    return get_profile("default")


def state_of(name: str = "default") -> str:
    return Profile.objects.get(name=name).state


# --- initialize ------------------------------------------------------------------------------


def test_initialize_with_yes_prints_what_acumatica_needs(connected_profile):
    stdout, _ = run("initialize", "--yes")

    assert state_of() == Profile.State.ACTIVE
    assert "Connected to Magento" in stdout
    assert f"Address:      {connected_profile.push_url}" in stdout
    assert "Header Name:  X-Connector-Secret" in stdout
    assert f"Header Value: {connected_profile.push_secret}" in stdout
    assert all(task.enabled for task in processor_schedulers(connected_profile))
    entry = AuditEntry.objects.get(kind=AuditEntry.Kind.INITIALIZE)
    assert (entry.actor, entry.user, entry.detail) == ("cli", None, "")


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


def test_initialize_asks_on_a_terminal(connected_profile, monkeypatch):
    questions = []
    monkeypatch.setattr(sys, "stdin", Terminal())
    monkeypatch.setattr("builtins.input", lambda prompt: questions.append(prompt) or "y")

    run("initialize")

    assert questions == [CONFIRM]
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


def test_deactivate_stop_switches_the_schedulers_off(active_profile):
    stdout, _ = run("deactivate", "--stop")

    assert "is stopped" in stdout
    assert state_of() == Profile.State.STOPPED
    assert not any(task.enabled for task in processor_schedulers(active_profile))
    assert AuditEntry.objects.filter(kind=AuditEntry.Kind.STOP, actor="cli").exists()


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


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_manage_py_initialize_without_yes_and_without_a_terminal_exits_2():
    finished = manage_py("initialize")

    assert finished.returncode == 2, finished.stderr
    assert "confirm with --yes" in finished.stderr
    assert state_of() == Profile.State.NEW


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_manage_py_deactivate_with_both_flags_exits_2():
    finished = manage_py("deactivate", "--pause", "--stop")

    assert finished.returncode == 2, finished.stderr
    assert "not allowed with argument" in finished.stderr


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_manage_py_initialize_of_a_missing_profile_exits_1():
    finished = manage_py("initialize", "--yes", "--profile", "nope")

    assert finished.returncode == 1
    assert "No profile named 'nope'." in finished.stderr


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_manage_py_initialize_with_yes_activates(connected_profile):
    finished = manage_py("initialize", "--yes")

    assert finished.returncode == 0, finished.stderr
    assert f"Header Value: {connected_profile.push_secret}" in finished.stdout
    assert state_of() == Profile.State.ACTIVE
