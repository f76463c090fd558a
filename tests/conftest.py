"""Fixtures every test module shares: users by role, a real Redis, real Celery processes."""

from __future__ import annotations

import os

import pytest
from django.contrib.auth.models import Group, Permission

from tests.helpers import CeleryProcess, redis_answers, skip_or_fail, subprocess_environment


@pytest.fixture
def make_user(django_user_model):
    def make(username: str, *, role: str | None = None, **extra):
        user = django_user_model.objects.create_user(username, password="pw-" + username, **extra)
        if role == "viewer":
            user.groups.add(Group.objects.get(name="viewer"))
        elif role == "manage":
            user.user_permissions.add(
                Permission.objects.get(content_type__app_label="connector", codename="manage")
            )
        return user

    return make


@pytest.fixture
def manager(make_user):
    return make_user("manager", role="manage", is_staff=True)


@pytest.fixture
def viewer(make_user):
    return make_user("viewer", role="viewer")


@pytest.fixture
def nobody(make_user):
    return make_user("nobody")


@pytest.fixture
def anonymous_client(client):
    return client


@pytest.fixture
def manager_client(client, manager):
    client.force_login(manager)
    return client


@pytest.fixture
def viewer_client(client, viewer):
    client.force_login(viewer)
    return client


@pytest.fixture
def nobody_client(client, nobody):
    client.force_login(nobody)
    return client


@pytest.fixture(scope="session")
def redis_url() -> str:
    """A real Redis for queue and worker tests (db 15, so the machine's data is left alone)."""
    url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    if not redis_answers(url):
        skip_or_fail(f"Redis is not answering at {url}")
    return url


@pytest.fixture
def celery_processes(tmp_path, redis_url):
    """Start real worker/beat processes on Redis and the test database."""
    started: list[CeleryProcess] = []

    def start(kind: str, *extra: str, **environment: str) -> CeleryProcess:
        arguments = {
            "worker": ["worker", "-Q", "processors,default", "--concurrency", "2",
                       "--loglevel", "INFO", "--without-gossip", "--without-mingle"],
            "beat": ["beat", "--loglevel", "INFO", "--schedule", str(tmp_path / "beat.db")],
        }[kind]
        environment = subprocess_environment(CELERY_BROKER_URL=redis_url, **environment)
        process = CeleryProcess([*arguments, *extra], environment, tmp_path / f"{kind}.log")
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()
