"""Raise or clear alerts now; for cron or a systemd timer, so a dead beat is noticed too."""

from __future__ import annotations

from connector.alerts import evaluate_alerts
from connector.management.base import ConnectorCommand


class Command(ConnectorCommand):
    help = "Evaluate the alert conditions and deliver what is due (beat does this every minute)."

    def handle(self, *args, **options):
        changed = evaluate_alerts()
        for alert in changed:
            self.stdout.write(f"{alert.state}: {alert.profile or 'all profiles'} "
                              f"{alert.title}: {alert.message}")
        self.stdout.write(f"{len(changed)} alert(s) raised or cleared.")
