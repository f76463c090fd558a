"""Log records name the process that wrote them: web, worker or beat."""

from __future__ import annotations

import logging
import os
import sys


def current_process_role() -> str:
    role = os.environ.get("CONNECTOR_PROCESS")
    if role:
        return role
    arguments = " ".join(sys.argv)
    if "celery" in arguments:
        if " beat" in arguments:
            return "beat"
        if " worker" in arguments:
            return "worker"
    return "web"


class ProcessRoleFilter(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self.role = current_process_role()

    def filter(self, record: logging.LogRecord) -> bool:
        record.process_role = self.role
        return True
