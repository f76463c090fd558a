from __future__ import annotations

from connector.lifecycle import LifecycleError, pause, stop
from connector.management.base import ProfileCommand, failed


class Command(ProfileCommand):
    help = (
        "--pause: keep storing push notifications and send nothing (Pause Sync to Magento); "
        "--stop: refuse push notifications and switch the schedulers off (Stop Push "
        "Notification) until the next Initialize."
    )

    def add_arguments(self, parser) -> None:
        super().add_arguments(parser)
        mode = parser.add_mutually_exclusive_group(required=True)
        mode.add_argument("--pause", action="store_true", help="Pause Sync to Magento.")
        mode.add_argument("--stop", action="store_true", help="Stop Push Notification.")

    def handle(self, *args, **options) -> None:
        profile = self.get_profile(options["profile"])
        try:
            if options["pause"]:
                pause(profile, actor="cli")
                done = "paused: push notifications are stored, nothing is sent"
            else:
                stop(profile, actor="cli")
                done = "stopped: push notifications are refused and the schedulers are off"
        except LifecycleError as error:
            raise failed(str(error)) from None
        self.stdout.write(self.style.SUCCESS(f"Profile '{profile}' is {done}."))
