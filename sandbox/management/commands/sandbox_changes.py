"""`sandbox_changes --count N`: the sandbox page's *Simulate changes in Acumatica* button.

The simulators live in the web process, so this command asks it over HTTP: POST
{CONNECTOR_BASE_URL}/sandbox/control/simulate with the sandbox profile's push secret.
Exit 0 done, 1 failed (the reason on stderr), 2 bad usage.
"""

from __future__ import annotations

from typing import Any

import requests
from django.conf import settings

from connector.crypto import SecretDecryptionError
from connector.management.base import ConnectorCommand, failed, invalid
from sandbox import demo
from sandbox.views import CONTROL_SECRET_HEADER
from setup_params.models import Profile

# Each change may take five delivery attempts of up to ten seconds each, in the web process.
REQUEST_TIMEOUT_SECONDS = 300


class Command(ConnectorCommand):
    help = (
        "Make the simulated Acumatica (in the running web process) change prices and stock "
        "and push the changes to the connector; prints what changed."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--count", type=int, default=5,
            help=f"How many random changes (1–{demo.MAX_SIMULATED_CHANGES}, default 5).",
        )

    def handle(self, *args: Any, count: int, **options: Any) -> None:
        if not 1 <= count <= demo.MAX_SIMULATED_CHANGES:
            raise invalid(f"--count must be between 1 and {demo.MAX_SIMULATED_CHANGES}.")
        profile = Profile.objects.filter(name=demo.SANDBOX_PROFILE).first()
        if profile is None:
            raise failed("There is no sandbox profile: run `manage.py sandbox_setup` first.")
        try:
            secret = profile.push_secret
        except SecretDecryptionError as error:
            raise failed(f"The sandbox profile's push secret cannot be read: {error}") from None
        url = settings.CONNECTOR_BASE_URL + demo.CONTROL_SIMULATE_PATH
        try:
            response = requests.post(
                url, json={"count": count}, headers={CONTROL_SECRET_HEADER: secret},
                timeout=REQUEST_TIMEOUT_SECONDS,
            )
        except requests.RequestException as error:
            raise failed(
                f"The web process does not answer at {url} ({type(error).__name__}). "
                "Is it running (make run)?"
            ) from None
        if response.status_code == 404 and "error" not in _json(response):
            raise failed(f"{url} answers 404: the web process does not serve the sandbox "
                         "(start it with SANDBOX_ENABLED=1).")
        body = _json(response)
        if response.status_code != 200:
            reason = body.get("error") or response.text[:300]
            raise failed(f"HTTP {response.status_code}: {reason}")
        for change in body.get("changes", []):
            self.stdout.write(
                f"{change['sku']} {change['what']}: {demo.number_text(change['old'])} → "
                f"{demo.number_text(change['new'])}"
            )
        for delivery in body.get("deliveries", []):
            status = f"HTTP {delivery['status']}" if delivery["status"] else delivery["error"]
            self.stdout.write(
                f"  push {delivery['push_notification']} ({'; '.join(delivery['rows'])}): "
                f"{status} after {delivery['attempts']} attempt(s)"
            )
        summary = body.get("summary", "")
        if body.get("failed"):
            raise failed(summary)
        self.stdout.write(self.style.SUCCESS(summary))


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}

