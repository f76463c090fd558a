"""`test_connection [magento|acumatica] [--profile P]`: the Test Connection button for scripts."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest
from django.core.management import CommandError, call_command

from connector.acumatica_connection import client_for
from setup_params.models import create_profile, get_profile
from tests.helpers import PROJECT_DIR, subprocess_environment
from tests.setup_params.conftest import connect_acumatica


def run(*arguments: str) -> tuple[str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    call_command("test_connection", *arguments, stdout=stdout, stderr=stderr)
    return stdout.getvalue(), stderr.getvalue()


def exit_status(*arguments: str) -> tuple[int, str]:
    with pytest.raises(CommandError) as failure:
        run(*arguments)
    return failure.value.returncode, str(failure.value)


def connect(url: str, token: str, *, timeout: int = 5, name: str = "default") -> None:
    settings = get_profile(name).magento_settings
    settings.magento_url = url
    settings.token = token
    settings.timeout = timeout
    settings.save()


@pytest.mark.django_db
def test_a_working_connection_exits_0_with_the_stores(magento, magento_url):
    connect(magento_url, magento.token)

    stdout, _ = run("magento")

    assert stdout.startswith("Connected to Magento")
    assert "default (id 1, website 1, base currency USD)" in stdout
    assert "fr (id 2, website 2, base currency EUR)" in stdout


@pytest.mark.django_db
def test_a_refused_token_exits_1_with_the_reason_and_the_bearer_hint(magento, magento_url):
    connect(magento_url, "wrong-token")

    status, message = exit_status("magento")

    assert status == 1
    assert "Magento refused the access token (HTTP 401" in message
    assert "Allow OAuth Access Tokens to be used as standalone Bearer tokens" in message
    assert "wrong-token" not in message


@pytest.mark.django_db
def test_bearer_tokens_disabled_exits_1(magento, magento_url):
    magento.bearer_disabled = True
    connect(magento_url, magento.token)

    status, message = exit_status()

    assert status == 1 and "oauth/consumer/enable_integration_as_bearer" in message


@pytest.mark.django_db
def test_a_closed_port_exits_1(magento, closed_port_url):
    connect(closed_port_url, magento.token)

    status, message = exit_status("magento")

    assert status == 1 and message.startswith("Connection refused by 127.0.0.1:")


@pytest.mark.django_db
def test_no_url_yet_exits_1_saying_so():
    status, message = exit_status("magento")

    assert (status, message) == (1, "Enter the Magento URL first.")


@pytest.mark.django_db
def test_another_profile_is_tested_with_profile(magento, magento_url):
    create_profile("sandbox")
    connect(magento_url, magento.token, name="sandbox")

    stdout, _ = run("magento", "--profile", "sandbox")

    assert stdout.startswith("Connected to Magento")


@pytest.mark.django_db
def test_a_missing_profile_exits_1():
    status, message = exit_status("--profile", "nope")

    assert (status, message) == (1, "No profile named 'nope'.")


# --- Acumatica, and both -------------------------------------------------------------------


@pytest.mark.django_db
def test_a_working_acumatica_connection_exits_0_with_the_endpoints(acumatica, acumatica_url):
    connect_acumatica(acumatica_url)

    stdout, _ = run("acumatica")

    assert stdout.startswith(f"Connected to Acumatica 24.200.0198 at {acumatica_url}")
    assert "Endpoints and versions: Default 22.200.001, 23.200.001, 24.200.001, 25.200.001;" in (
        stdout
    )
    assert "Read stock item AACOMPUT01" in stdout
    assert acumatica.seats_in_use == 0


@pytest.mark.django_db
def test_a_refused_acumatica_sign_in_exits_1_without_the_password(acumatica, acumatica_url):
    connect_acumatica(acumatica_url, password="wrong-password-0c9d")

    status, message = exit_status("acumatica")

    assert status == 1
    assert message.startswith("Acumatica refused the sign-in of user 'admin': wrong user name")
    assert "wrong-password-0c9d" not in message


@pytest.mark.django_db
def test_the_acumatica_login_limit_exits_1_after_one_attempt(acumatica, acumatica_url):
    profile = connect_acumatica(acumatica_url)
    with client_for(profile).session():
        acumatica.reset_log()

        status, message = exit_status("acumatica")

        assert acumatica.login_attempts == 1
    assert status == 1 and "API Login Limit" in message and "SM604000" in message


@pytest.mark.django_db
def test_no_acumatica_url_yet_exits_1_saying_so():
    status, message = exit_status("acumatica")

    assert (status, message) == (1, "Enter the Acumatica instance URL first.")


@pytest.mark.django_db
def test_both_are_tested_when_none_is_named(magento, magento_url, acumatica, acumatica_url):
    connect(magento_url, magento.token)
    connect_acumatica(acumatica_url)

    stdout, _ = run()

    first, second = stdout.splitlines()
    assert first.startswith("Connected to Magento")
    assert second.startswith("Connected to Acumatica")


@pytest.mark.django_db
def test_testing_both_exits_1_when_either_fails_naming_which(magento, magento_url):
    connect(magento_url, magento.token)

    status, message = exit_status()

    assert (status, message) == (1, "Acumatica: Enter the Acumatica instance URL first.")


@pytest.mark.django_db
def test_testing_both_names_each_failure(acumatica_url, closed_port_url):
    connect(closed_port_url, "some-token")
    connect_acumatica(acumatica_url, tenant="Nope")

    status, message = exit_status()

    magento_line, acumatica_line = message.splitlines()
    assert status == 1
    assert magento_line.startswith("Magento: Connection refused by 127.0.0.1:")
    assert acumatica_line.startswith("Acumatica: Acumatica does not know the tenant 'Nope'")


@pytest.mark.django_db
def test_an_unknown_system_is_bad_usage():
    status, _ = exit_status("shopify")

    assert status == 2


@pytest.mark.django_db(transaction=True)
def test_manage_py_exit_status_is_0_when_magento_answers_and_1_when_it_refuses(
    committed_defaults, magento, magento_url
):
    connect(magento_url, magento.token)
    works = subprocess.run(
        [sys.executable, "manage.py", "test_connection", "magento"],
        cwd=PROJECT_DIR,
        env=subprocess_environment(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    magento.bearer_disabled = True
    refused = subprocess.run(
        [sys.executable, "manage.py", "test_connection", "magento"],
        cwd=PROJECT_DIR,
        env=subprocess_environment(),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert works.returncode == 0, works.stderr
    assert works.stdout.startswith("Connected to Magento")
    assert refused.returncode == 1
    assert "Magento refused the access token" in refused.stderr
