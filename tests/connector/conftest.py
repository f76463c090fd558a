"""Fixtures for the lifecycle's tests: a served Magento simulator and the default profile."""

from __future__ import annotations

import pytest

from sandbox.magento import DEFAULT_TOKEN, MagentoSimulator
from sandbox.server import serve
from setup_params.models import Profile, get_profile


@pytest.fixture
def magento_simulator():
    simulator = MagentoSimulator()
    with serve(simulator) as base_url:
        simulator.url = base_url
        yield simulator


@pytest.fixture
def connected_profile(db, magento_simulator) -> Profile:
    """The default profile, still `new`, pointing at the simulator with the right token."""
    profile = get_profile("default")
    settings = profile.magento_settings
    settings.magento_url = magento_simulator.url
    settings.token = DEFAULT_TOKEN
    settings.timeout = 5
    settings.save()
    return get_profile("default")
