"""Settings come from the environment; secrets have no production default."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys

import pytest
from django.db import connection

from tests.helpers import PROJECT_DIR, clean_environment


def run_python(code: str, tmp_path, **environment: str) -> subprocess.CompletedProcess:
    clean = {
        key: value
        for key, value in clean_environment().items()
        if key not in {"SECRET_KEY", "CONNECTOR_ENCRYPTION_KEY", "DEBUG", "DJANGO_SETTINGS_MODULE"}
    }
    clean.update({"CONNECTOR_VAR_DIR": str(tmp_path / "var"), **environment})
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=PROJECT_DIR,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.django_db
def test_the_suite_runs_on_postgresql_when_database_url_says_so():
    database_url = os.environ.get("DATABASE_URL", "")
    expected = "postgresql" if database_url.startswith(("postgres", "postgresql")) else "sqlite"
    assert connection.vendor == expected


@pytest.mark.parametrize("variable", ["SECRET_KEY", "CONNECTOR_ENCRYPTION_KEY"])
def test_without_debug_a_missing_secret_stops_start_up_naming_the_variable(tmp_path, variable):
    other = {"SECRET_KEY": "x" * 60, "CONNECTOR_ENCRYPTION_KEY": "k" * 44}
    other.pop(variable)
    result = run_python("import django; from django.conf import settings; settings.DEBUG", tmp_path,
                        DJANGO_SETTINGS_MODULE="connector.settings", **other)
    assert result.returncode != 0
    assert f"{variable} is not set" in result.stderr


def test_with_debug_missing_secrets_are_generated_once_into_var_with_mode_600(tmp_path):
    code = (
        "from django.conf import settings; "
        "print(settings.SECRET_KEY); print(settings.CONNECTOR_ENCRYPTION_KEY)"
    )
    first = run_python(code, tmp_path, DEBUG="1", DJANGO_SETTINGS_MODULE="connector.settings")
    second = run_python(code, tmp_path, DEBUG="1", DJANGO_SETTINGS_MODULE="connector.settings")
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    for name in ("secret_key", "connector_encryption_key"):
        mode = stat.S_IMODE((tmp_path / "var" / name).stat().st_mode)
        assert mode == 0o600


def test_embedded_default_is_sqlite_in_wal_mode_and_the_filesystem_broker(tmp_path):
    code = (
        "import django; django.setup(); from django.conf import settings; "
        "from django.db import connection; c = connection.cursor(); "
        "c.execute('PRAGMA journal_mode'); print(c.fetchone()[0]); "
        "print(settings.CELERY_BROKER_URL); print(settings.DATABASES['default']['NAME'])"
    )
    environment = {"DEBUG": "1", "DJANGO_SETTINGS_MODULE": "connector.settings"}
    environment["DATABASE_URL"] = ""
    environment["CELERY_BROKER_URL"] = ""
    result = run_python(code, tmp_path, **environment)
    assert result.returncode == 0, result.stderr
    journal_mode, broker, database = result.stdout.split()
    assert journal_mode == "wal"
    assert broker == "filesystem://"
    assert database.startswith(str(tmp_path / "var"))


def test_standard_library_modules_are_not_shadowed_from_the_project_root(tmp_path):
    result = run_python("import requests, celery, logging.handlers, queue; print(queue.Queue)",
                        tmp_path)
    assert result.returncode == 0, result.stderr
    assert not (PROJECT_DIR / "queue").exists()


def test_check_deploy_is_clean_with_production_like_environment(tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=PROJECT_DIR,
        env={
            **{k: v for k, v in clean_environment().items() if k != "DJANGO_SETTINGS_MODULE"},
            "DJANGO_SETTINGS_MODULE": "connector.settings",
            "CONNECTOR_VAR_DIR": str(tmp_path / "var"),
            "DEBUG": "0",
            "SECRET_KEY": "p" + "r0duct10n-s3cr3t-" * 4,
            "CONNECTOR_ENCRYPTION_KEY": "dGVzdHMtb25seS1lbmNyeXB0aW9uLWtleS0zMmJ5dGU=",
            "CONNECTOR_BASE_URL": "https://connector.example.com",
            "ALLOWED_HOSTS": "connector.example.com",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/accounts/login/", "/"])
def test_pages_reference_no_host_but_their_own(client, manager, path):
    client.force_login(manager)
    html = client.get(path, follow=True).content.decode()
    references = re.findall(r'(?:src|href|action)=["\']([^"\']+)', html)
    assert references, "the page should load its own CSS and JS"
    external = [url for url in references if re.match(r"^(?:[a-z]+:)?//", url)]
    assert external == []
    assert "/static/vendor/bootstrap/css/bootstrap.min.css" in html
