from __future__ import annotations

import time

from django.utils import timezone

from connector.management.base import ProfileCommand, failed
from message_queue import pull
from message_queue.models import Entity, LoadRun
from setup_params.models import Profile

# Progress lines at most this often (the last batch always prints).
PROGRESS_EVERY_SECONDS = 1.0


class Command(ProfileCommand):
    help = (
        "Initial load: read every row of the profile's generic inquiries (stock and prices) "
        "from Acumatica over OData and queue them through the push-notification path, "
        "printing progress. Exit 0 when every load succeeded, 1 when one failed."
    )

    def add_arguments(self, parser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--entity", choices=Entity.values, help="Only this entity (default: all of them)."
        )

    def handle(self, *args, **options) -> None:
        profile = self.get_profile(options["profile"])
        entities = [options["entity"]] if options["entity"] else Entity.values
        problems = []
        for entity in entities:
            try:
                run = pull.create_run(profile, entity, started_by="cli")
            except pull.LoadError as error:
                raise failed(str(error)) from None
            inquiry = pull.inquiry_for(profile, entity).name
            self.stdout.write(f"{entity}: reading {inquiry} (run {run.pk})")
            run = self.load(run)
            self.stdout.write(self.summary(run))
            if run.status != LoadRun.Status.SUCCEEDED:
                problems.append(f"{entity}: {run.error or run.get_status_display().lower()}")
        if problems:
            raise failed("Initial load failed. " + " ".join(problems))
        if profile.state == Profile.State.ACTIVE:
            self.stdout.write(self.style.SUCCESS("Initial load done: the processors send the "
                                                 "queue."))
        else:
            self.stdout.write(self.style.SUCCESS(
                f"Initial load done: the queue waits while profile '{profile}' is "
                f"{profile.get_state_display().lower()}."
            ))

    def load(self, run: LoadRun) -> LoadRun:
        last_line = 0.0

        def progress(run: LoadRun) -> None:
            nonlocal last_line
            if run.finished or time.monotonic() - last_line < PROGRESS_EVERY_SECONDS:
                return
            last_line = time.monotonic()
            self.stdout.write(self.progress_line(run))

        try:
            return pull.execute(run, on_progress=progress)
        except KeyboardInterrupt:
            # The process ends: mark the run so the screen offers Resume at once.
            LoadRun.objects.filter(pk=run.pk, status=LoadRun.Status.RUNNING).update(
                status=LoadRun.Status.CANCELLED, finished_at=timezone.now()
            )
            raise failed(f"Interrupted: run {run.pk} is cancelled; resume it on the Loads & "
                         "reconciliation screen.") from None

    @staticmethod
    def progress_line(run: LoadRun) -> str:
        text = f"{run.entity}: {run.read:,}"
        if run.total is not None:
            text += f" / {run.total:,} rows ({run.percent():.0f}%)"
        else:
            text += " rows"
        rate = run.rate()
        if rate:
            text += f", {rate:,.0f} rows/s"
        left = run.seconds_left()
        if left is not None:
            text += f", about {left:,.0f} s left"
        return text

    @staticmethod
    def summary(run: LoadRun) -> str:
        seconds = ""
        if run.finished_at and run.resumed_at:
            seconds = f" in {(run.finished_at - run.resumed_at).total_seconds():.1f} s"
        text = (f"{run.entity}: {run.get_status_display().lower()}, {run.read:,} rows read, "
                f"{run.keys_changed:,} keys queued{seconds}")
        return text + (f" ({run.error})" if run.error else "")
