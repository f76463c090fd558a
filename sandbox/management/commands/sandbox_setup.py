"""`sandbox_setup`: the `sandbox` profile, pointing at the simulators this web process serves."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.urls import reverse

from connector.management.base import ConnectorCommand, failed
from sandbox import demo


class Command(ConnectorCommand):
    help = (
        "Create or update the 'sandbox' profile so that it uses the simulated Magento and "
        "Acumatica served under /sandbox/ (needs SANDBOX_ENABLED). Safe to run every start."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.SANDBOX_ENABLED:
            raise failed(
                "SANDBOX_ENABLED is off: the simulators are not served, so a sandbox profile "
                "would point at nothing. Set SANDBOX_ENABLED=1 (make run does)."
            )
        profile = demo.ensure_sandbox_profile()
        base = settings.CONNECTOR_BASE_URL
        self.stdout.write(self.style.SUCCESS(f"Profile '{profile}' is ready ({profile.state})."))
        self.stdout.write(f"  Magento:    {demo.magento_url()}")
        self.stdout.write(f"  Acumatica:  {demo.acumatica_url()} (tenant {demo.ACUMATICA_TENANT}, "
                          f"user {demo.ACUMATICA_USERNAME})")
        self.stdout.write(f"  Initialize: {base}{reverse('lifecycle')}?profile={profile.name}")
        self.stdout.write(f"  Watch:      {base}{reverse('sandbox_catalog')}")
