"""Test settings: the real settings, with fixed throw-away secrets and the sandbox on."""

import os

os.environ.setdefault("SECRET_KEY", "tests-only-secret-key-never-used-in-production-0123456789")
os.environ.setdefault("CONNECTOR_ENCRYPTION_KEY", "dGVzdHMtb25seS1lbmNyeXB0aW9uLWtleS0zMmJ5dGU=")
os.environ.setdefault("SANDBOX_ENABLED", "1")

from connector.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
