from __future__ import annotations

from collections import Counter

from connector.management.base import ProfileCommand, failed
from message_queue import reconcile
from message_queue.models import ReconcileDifference, ReconcileRun


def shown(value) -> str:
    return "—" if value is None else f"{value.normalize():f}"


class Command(ProfileCommand):
    help = (
        "Reconciliation report: compare Acumatica's base prices and quantities with Magento's "
        "and print the differences; --fix queues Acumatica's values as messages (the "
        "processors send them). Exit 0 whatever the differences; 1 when a side cannot be read."
    )

    def add_arguments(self, parser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--sku-prefix", default="", help="Only SKUs starting with this.")
        parser.add_argument("--fix", action="store_true",
                            help="Queue a correction for every difference that can be fixed.")

    def handle(self, *args, **options) -> None:
        profile = self.get_profile(options["profile"])
        try:
            report = reconcile.create_report(profile, sku_prefix=options["sku_prefix"],
                                             started_by="cli")
        except reconcile.ReconcileError as error:
            raise failed(str(error)) from None
        report = reconcile.run_report(report)
        if report.status != ReconcileRun.Status.SUCCEEDED:
            raise failed(f"The report failed: {report.error}")
        differences = list(report.differences.all())
        if differences:
            width = max(len(difference.sku) for difference in differences)
            self.stdout.write(f"{'SKU':<{width}}  {'field':<20} {'Acumatica':>14} "
                              f"{'Magento':>14}  what")
        for difference in differences:
            field = difference.field + (f" ({difference.source_code})"
                                        if difference.source_code else "")
            self.stdout.write(
                f"{difference.sku:<{width}}  {field:<20} {shown(difference.acumatica_value):>14} "
                f"{shown(difference.magento_value):>14}  {difference.get_kind_display()}"
            )
        if report.note:
            self.stdout.write(report.note)
        self.stdout.write(f"{len(differences)} difference{'s' if len(differences) != 1 else ''} "
                          f"in {report.skus_compared} SKUs (report {report.pk}).")
        if options["fix"] and differences:
            result = reconcile.fix(report, actor="cli")
            self.stdout.write(self.style.SUCCESS(result.summary()))
            reasons = Counter(_kind_of(difference) for difference, _ in result.skipped)
            for reason, count in sorted(reasons.items()):
                self.stdout.write(f"  left alone: {count} × {reason}")


def _kind_of(difference: ReconcileDifference) -> str:
    if difference.kind != ReconcileDifference.Kind.DIFFERENT:
        return difference.get_kind_display().lower()
    if difference.acumatica_value is None:
        return "no stock row in Acumatica"
    return "changed after the report began"
