from __future__ import annotations

from connector.management.base import ProfileCommand
from message_queue.models import Entity
from message_queue.processing import count_pending, run_pass, run_processor
from setup_params.models import Profile


class Command(ProfileCommand):
    help = (
        "Send the profile's pending messages to Magento now: with --once one pass per entity, "
        "otherwise one full run (check process time) per entity, as beat would start it."
    )

    def add_arguments(self, parser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--entity", choices=Entity.values, help="Only this entity (default: all of them)."
        )
        parser.add_argument("--once", action="store_true", help="One pass instead of a run.")

    def handle(self, *args, **options) -> None:
        profile = self.get_profile(options["profile"])
        entities = [options["entity"]] if options["entity"] else Entity.values
        if profile.state != Profile.State.ACTIVE:
            state = profile.get_state_display().lower()
            self.stdout.write(f"Nothing is sent while profile '{profile}' is {state}.")
            for entity in entities:
                self.stdout.write(f"{entity}: {count_pending(profile, entity)} pending")
            return
        for entity in entities:
            if options["once"]:
                report = run_pass(profile, entity)
            else:
                report = run_processor(profile.name, entity)
            if report is None:
                self.stdout.write(f"{entity}: every sender slot is busy; nothing was run")
            else:
                self.stdout.write(f"{entity}: {report.summary()}")
