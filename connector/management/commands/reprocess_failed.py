from __future__ import annotations

import argparse

from connector.management.base import ProfileCommand, failed
from message_queue.models import Entity, Message
from message_queue.reprocess import reprocess


def message_ids(text: str) -> list[int]:
    """'1,2,3' → [1, 2, 3]; anything else is bad usage (exit 2)."""
    try:
        ids = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"'{text}' is not a comma-separated list of message ids, e.g. 1,2,3."
        ) from None
    if not ids or min(ids) < 1:
        raise argparse.ArgumentTypeError(f"'{text}' names no valid message id, e.g. 1,2,3.")
    return ids


class Command(ProfileCommand):
    help = (
        "Reprocess failed and skipped messages: attempts reset, back to pending (merged into "
        "a newer pending change of the same key if there is one)."
    )

    def add_arguments(self, parser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--entity", choices=Entity.values, help="Only this entity.")
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument(
            "--all",
            action="store_true",
            help="Every failed or skipped message of the profile (and entity).",
        )
        which.add_argument("--ids", type=message_ids, help="These messages, e.g. 1,2,3.")

    def handle(self, *args, **options) -> None:
        profile = self.get_profile(options["profile"])
        messages = Message.objects.filter(profile=profile).failed_or_skipped()
        if options["entity"]:
            messages = messages.filter(entity=options["entity"])
        if options["ids"]:
            wanted = sorted(set(options["ids"]))
            found = set(messages.filter(id__in=wanted).values_list("id", flat=True))
            ignored = [i for i in wanted if i not in found]
            if ignored:
                what = " ".join(filter(None, ["failed or skipped", options["entity"], "messages"]))
                self.stderr.write(
                    f"Ignored, not {what} of profile '{profile}': {', '.join(map(str, ignored))}."
                )
            if not found:
                raise failed("None of the ids is a message that can be reprocessed.")
            messages = messages.filter(id__in=found)
        count = reprocess(messages, actor="cli", profile=profile)
        noun = "message" if count == 1 else "messages"
        self.stdout.write(self.style.SUCCESS(f"{count} {noun} reprocessed."))
