"""`test_connection [magento|acumatica] [--profile P]`: the screens' Test Connection buttons."""

from __future__ import annotations

from typing import Any

from connector.management.base import ProfileCommand, failed
from setup_params import services

ACUMATICA_NOT_YET = "Acumatica connection settings are not available yet."


class Command(ProfileCommand):
    help = (
        "Test the connection to Magento (and to Acumatica, once its settings exist) with the "
        "stored settings of a profile. Exit 0 when every tested connection works, else 1."
    )

    def add_arguments(self, parser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "system", nargs="?", choices=["magento", "acumatica"],
            help="Which connection to test; both when none is named.",
        )

    def handle(self, *args: Any, system: str | None, profile: str, **options: Any) -> None:
        found = self.get_profile(profile)
        outcomes = []
        if system in (None, "magento"):
            outcomes.append(services.test_magento_connection(found.magento_settings))
        # The Acumatica test arrives with the Acumatica Connection screen (a later issue),
        # as services.test_acumatica_connection(profile) -> ConnectionOutcome.
        test_acumatica = getattr(services, "test_acumatica_connection", None)
        if system == "acumatica" and test_acumatica is None:
            raise failed(ACUMATICA_NOT_YET)
        if system in (None, "acumatica") and test_acumatica is not None:
            outcomes.append(test_acumatica(found))

        for outcome in outcomes:
            if outcome.ok:
                self.stdout.write(outcome.message)
        failures = [outcome.message for outcome in outcomes if not outcome.ok]
        if failures:
            raise failed("\n".join(failures))
