from __future__ import annotations

import sys

from connector.lifecycle import CONFIRM_INITIALIZE, LifecycleError, initialize
from connector.management.base import ProfileCommand, failed, invalid


class Command(ProfileCommand):
    help = (
        "Test Magento, switch the schedulers on and make the profile active; print what "
        "Acumatica's Push Notifications form needs (address, header name, secret)."
    )

    def add_arguments(self, parser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--yes", action="store_true", help="Do not ask for confirmation.")
        parser.add_argument(
            "--manual-acumatica",
            action="store_true",
            help="The Acumatica side (push notifications) is set up by hand.",
        )

    def handle(self, *args, **options) -> None:
        asking = not options["yes"]
        if asking and not sys.stdin.isatty():
            raise invalid("No terminal to confirm on: confirm with --yes.")
        profile = self.get_profile(options["profile"])
        if asking and not self.confirmed():
            raise failed("Initialize cancelled: nothing changed.")
        try:
            result = initialize(profile, actor="cli", manual_acumatica=options["manual_acumatica"])
        except LifecycleError as error:
            raise failed(str(error)) from None
        self.stdout.write(result.magento_message)
        self.stdout.write(self.style.SUCCESS(f"Profile '{profile}' is initialized and active."))
        self.stdout.write(
            "Enter these on Acumatica's Push Notifications form (SM302000)"
            + (", by hand:" if result.manual_acumatica else ":")
        )
        self.stdout.write(f"  Address:      {result.push_url}")
        self.stdout.write(f"  Header Name:  {result.push_header_name}")
        self.stdout.write(f"  Header Value: {profile.push_secret}")

    def confirmed(self) -> bool:
        try:
            answer = input(f"{CONFIRM_INITIALIZE} [y/N] ")
        except EOFError:
            return False
        return answer.strip().lower() in ("y", "yes")
