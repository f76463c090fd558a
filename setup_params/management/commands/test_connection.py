"""`test_connection [magento|acumatica] [--profile P]`: the screens' Test Connection buttons."""

from __future__ import annotations

from typing import Any

from connector.management.base import ProfileCommand, failed
from setup_params import services

SYSTEMS = ("magento", "acumatica")
SYSTEM_NAMES = {"magento": "Magento", "acumatica": "Acumatica"}


class Command(ProfileCommand):
    help = (
        "Test the connection to Magento and to Acumatica (both when none is named) with the "
        "stored settings of a profile. Exit 0 when every tested connection works, else 1."
    )

    def add_arguments(self, parser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "system", nargs="?", choices=SYSTEMS,
            help="Which connection to test; both when none is named.",
        )

    def handle(self, *args: Any, system: str | None, profile: str, **options: Any) -> None:
        found = self.get_profile(profile)
        outcomes = []
        if system in (None, "magento"):
            outcomes.append(("magento", services.test_magento_connection(found.magento_settings)))
        if system in (None, "acumatica"):
            outcomes.append(("acumatica", services.test_acumatica_connection(found)))

        for _, outcome in outcomes:
            if outcome.ok:
                self.stdout.write(outcome.message)
        # Testing both, each failure says which system it is about.
        failures = [
            outcome.message if system else f"{SYSTEM_NAMES[name]}: {outcome.message}"
            for name, outcome in outcomes
            if not outcome.ok
        ]
        if failures:
            raise failed("\n".join(failures))
