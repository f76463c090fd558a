from __future__ import annotations

from connector.lifecycle import LifecycleError, activate
from connector.management.base import ProfileCommand, failed


class Command(ProfileCommand):
    help = "A paused profile sends to Magento again."

    def handle(self, *args, **options) -> None:
        profile = self.get_profile(options["profile"])
        try:
            activate(profile, actor="cli")
        except LifecycleError as error:
            raise failed(str(error)) from None
        self.stdout.write(self.style.SUCCESS(f"Profile '{profile}' is active."))
