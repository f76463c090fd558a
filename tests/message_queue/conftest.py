"""Fixtures for the queue: a served Magento simulator and an active profile pointing at it."""

from __future__ import annotations

import pytest

from sandbox.magento import DEFAULT_TOKEN, MagentoSimulator
from sandbox.server import serve
from setup_params.models import Profile, get_profile
from tests.message_queue.builders import Pusher


@pytest.fixture
def simulator():
    return MagentoSimulator()


@pytest.fixture
def magento(simulator):
    with serve(simulator) as base_url:
        simulator.url = base_url
        yield simulator


@pytest.fixture
def profile(db, magento) -> Profile:
    profile = get_profile("default")
    settings = profile.magento_settings
    settings.magento_url = magento.url
    settings.token = DEFAULT_TOKEN
    settings.timeout = 5
    settings.save()
    profile.state = Profile.State.ACTIVE
    profile.save(update_fields=["state"])
    return get_profile("default")


@pytest.fixture
def push(profile) -> Pusher:
    return Pusher(profile)
