from __future__ import annotations

from connector.lifecycle import LifecycleError, pause, stop
from connector.management.base import ProfileCommand, failed
from connector.models import ProvisioningRun
from connector.provisioning import failure_report, run_inline


class Command(ProfileCommand):
    help = (
        "--pause: keep storing push notifications and send nothing (Pause Sync to Magento); "
        "--stop: publish the connector's push notifications inactive in Acumatica (the "
        "Acumatica website restarts), then refuse push notifications and switch the "
        "schedulers off (Stop Push Notification) until the next Initialize."
    )

    def add_arguments(self, parser) -> None:
        super().add_arguments(parser)
        mode = parser.add_mutually_exclusive_group(required=True)
        mode.add_argument("--pause", action="store_true", help="Pause Sync to Magento.")
        mode.add_argument("--stop", action="store_true", help="Stop Push Notification.")
        parser.add_argument(
            "--manual-acumatica",
            action="store_true",
            help="With --stop: publish nothing; the push notifications are switched off by "
            "hand on SM302000 (the default when the last Initialize was set up by hand).",
        )

    def handle(self, *args, **options) -> None:
        profile = self.get_profile(options["profile"])
        try:
            if options["pause"]:
                pause(profile, actor="cli")
                done = "paused: push notifications are stored, nothing is sent"
            else:
                result = stop(profile, actor="cli",
                              manual_acumatica=True if options["manual_acumatica"] else None,
                              start=lambda run: run_inline(run, self.stdout.write))
                if result.run is not None:
                    result.run.refresh_from_db()
                    if result.run.status != ProvisioningRun.Status.SUCCEEDED:
                        raise failed(failure_report(result.run))
                done = "stopped: push notifications are refused and the schedulers are off"
                if result.untick:
                    self.stdout.write(
                        "Acumatica was set up by hand: on its Push Notifications form "
                        "(SM302000), clear Active on "
                        + " and ".join(f"'{name}'" for name in result.untick)
                        + "."
                    )
        except LifecycleError as error:
            raise failed(str(error)) from None
        self.stdout.write(self.style.SUCCESS(f"Profile '{profile}' is {done}."))

