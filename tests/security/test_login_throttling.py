"""Failed logins are throttled (issue 7, security 3): five in a row for one username from one
address lock that pair out for 15 minutes, with a sentence saying so; a manager unlocks it in
the admin (Axes › Access attempts) or with `axes_reset`."""

from __future__ import annotations

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.core.management import call_command
from django.utils import timezone

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"
LOCKED = (
    "Too many failed logins: this account is locked for 15 minutes. A manager can unlock it "
    "from the admin (Axes › Access attempts)."
)
WRONG = "Please enter a correct username and password."


@pytest.fixture
def operator(make_user):
    return make_user("operator", role="viewer")


@pytest.fixture
def admin_client(client, make_user):
    client.force_login(make_user("root", role="manage", is_staff=True, is_superuser=True))
    return client


def log_in(client, username: str = "operator", password: str = "pw-operator", **extra):
    return client.post(LOGIN, {"username": username, "password": password, "next": "/"},
                       **extra)


def fail(client, times: int, username: str = "operator", **extra):
    return [log_in(client, username, "not-the-password", **extra) for _ in range(times)]


def text(response) -> str:
    return " ".join(response.content.decode().split())


def test_four_failures_only_say_the_password_did_not_match(client, operator):
    answers = fail(client, 4)

    assert [answer.status_code for answer in answers] == [200] * 4
    assert WRONG in text(answers[-1])
    assert log_in(client).status_code == 302


def test_the_fifth_failure_locks_the_account_for_15_minutes_with_a_clear_sentence(
    client, operator
):
    answers = fail(client, 5)

    assert answers[-1].status_code == 429
    assert LOCKED in text(answers[-1])
    right_password = log_in(client)
    assert right_password.status_code == 429
    assert LOCKED in text(right_password)
    assert "_auth_user_id" not in client.session


def test_the_lock_ends_by_itself_after_15_minutes(client, operator):
    fail(client, 5)
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))

    response = log_in(client)

    assert response.status_code == 302
    assert client.get("/").status_code == 200


def test_the_lock_holds_one_username_from_one_address_only(client, operator, make_user):
    make_user("colleague", role="viewer")
    fail(client, 5)

    assert log_in(client, "colleague", "pw-colleague").status_code == 302
    client.logout()
    assert log_in(client, REMOTE_ADDR="192.0.2.10").status_code == 302
    client.logout()
    assert log_in(client).status_code == 429


def test_a_success_before_the_fifth_failure_starts_the_count_again(client, operator):
    fail(client, 4)
    assert log_in(client).status_code == 302
    client.logout()

    answers = fail(client, 4)

    assert [answer.status_code for answer in answers] == [200] * 4


def test_a_manager_unlocks_the_account_in_the_admin(client, operator, admin_client):
    from django.test import Client

    locked_out = Client()
    fail(locked_out, 5)
    attempt = AccessAttempt.objects.get(username="operator")

    listing = admin_client.get("/admin/axes/accessattempt/")
    assert listing.status_code == 200
    assert "operator" in listing.content.decode()
    deleted = admin_client.post(f"/admin/axes/accessattempt/{attempt.pk}/delete/",
                                {"post": "yes"})

    assert deleted.status_code == 302
    assert not AccessAttempt.objects.exists()
    assert log_in(locked_out).status_code == 302


def test_axes_reset_unlocks_from_the_command_line(client, operator):
    fail(client, 5)

    call_command("axes_reset", verbosity=0)

    assert log_in(client).status_code == 302


def test_the_admin_login_is_throttled_too(client, make_user):
    make_user("root", is_staff=True, is_superuser=True)
    for _ in range(5):
        answer = client.post("/admin/login/", {"username": "root", "password": "nope"})

    assert answer.status_code == 429
    assert LOCKED in text(answer)
    locked = client.post("/admin/login/", {"username": "root", "password": "pw-root"})
    assert locked.status_code == 429
