from __future__ import annotations

import sys

from connector.lifecycle import CONFIRM_INITIALIZE, LifecycleError, initialize
from connector.management.base import ProfileCommand, failed, invalid
from connector.models import ProvisioningRun
from connector.provisioning import RESTART_WARNING, failure_report, run_inline
from setup_params.services import ConnectionOutcome, test_magento_connection


class Command(ProfileCommand):
    help = (
        "Test Magento, publish the connector's generic inquiries and push notifications to "
        "Acumatica (Customization API; the Acumatica website restarts), then switch the "
        "schedulers on and make the profile active. With --manual-acumatica nothing is "
        "published: print what Acumatica's Push Notifications form needs."
    )

    def add_arguments(self, parser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--yes", action="store_true", help="Do not ask for confirmation.")
        parser.add_argument(
            "--manual-acumatica",
            action="store_true",
            help="The Acumatica side (generic inquiries, push notifications) is set up by hand "
            "from the package on the Initialize / Deactivate screen: publish nothing.",
        )

    def handle(self, *args, **options) -> None:
        asking = not options["yes"]
        if asking and not sys.stdin.isatty():
            raise invalid("No terminal to confirm on: confirm with --yes.")
        profile = self.get_profile(options["profile"])
        manual = options["manual_acumatica"]
        if asking and not manual:
            self.stdout.write(RESTART_WARNING)
        if asking and not self.confirmed():
            raise failed("Initialize cancelled: nothing changed.")
        try:
            result = initialize(profile, actor="cli", manual_acumatica=manual,
                                test_magento=self.test_magento,
                                start=lambda run: run_inline(run, self.stdout.write))
        except LifecycleError as error:
            raise failed(str(error)) from None
        if result.run is not None:
            result.run.refresh_from_db()
            if result.run.status != ProvisioningRun.Status.SUCCEEDED:
                raise failed(failure_report(result.run))
        self.stdout.write(self.style.SUCCESS(f"Profile '{profile}' is initialized and active."))
        self.stdout.write(
            "Enter these on Acumatica's Push Notifications form (SM302000), by hand:"
            if manual
            else "Acumatica's push notifications (Push Notifications form, SM302000) send:"
        )
        self.stdout.write(f"  Address:      {result.push_url}")
        self.stdout.write(f"  Header Name:  {result.push_header_name}")
        self.stdout.write(f"  Header Value: {profile.push_secret}")

    def test_magento(self, magento_settings) -> ConnectionOutcome:
        """Magento's answer first, before Acumatica's progress lines."""
        outcome = test_magento_connection(magento_settings)
        if outcome.ok:
            self.stdout.write(outcome.message)
        return outcome

    def confirmed(self) -> bool:
        try:
            answer = input(f"{CONFIRM_INITIALIZE} [y/N] ")
        except EOFError:
            return False
        return answer.strip().lower() in ("y", "yes")

