"""Fixtures for the lifecycle's tests: served Magento and Acumatica simulators and the default
profile connected to them."""

from __future__ import annotations

import pytest

from connector import provisioning
from sandbox.acumatica import DEFAULT_PASSWORD as ACUMATICA_PASSWORD
from sandbox.acumatica import DEFAULT_TENANT as ACUMATICA_TENANT
from sandbox.acumatica import DEFAULT_USERNAME as ACUMATICA_USERNAME
from sandbox.acumatica import AcumaticaSimulator
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


# --- Acumatica: a served simulator, a profile connected to both, publishing inline -----------


@pytest.fixture
def acumatica_simulator():
    """A served Acumatica simulator with one API seat (a trial license's)."""
    simulator = AcumaticaSimulator(api_seats=1)
    with serve(simulator) as base_url:
        simulator.url = base_url
        yield simulator


@pytest.fixture
def fast_publishing(monkeypatch):
    """publishEnd is polled every 10 ms instead of every 5 s."""
    monkeypatch.setattr(provisioning, "PUBLISH_POLL_SECONDS", 0.01)


@pytest.fixture
def acumatica_profile(connected_profile, acumatica_simulator, fast_publishing) -> Profile:
    """The default profile, still `new`, connected to the Magento and Acumatica simulators."""
    connect_acumatica(connected_profile, acumatica_simulator)
    return get_profile("default")


@pytest.fixture
def publish_inline(monkeypatch):
    """Provisioning runs at once in the caller instead of on a Celery worker."""
    monkeypatch.setattr(provisioning, "start", lambda run: provisioning.run_provisioning(run))


def connect_acumatica(profile: Profile, simulator: AcumaticaSimulator) -> None:
    settings = profile.acumatica_settings
    settings.instance_url = simulator.url
    settings.tenant = ACUMATICA_TENANT
    settings.username = ACUMATICA_USERNAME
    settings.password = ACUMATICA_PASSWORD
    settings.timeout = 5
    settings.save()
