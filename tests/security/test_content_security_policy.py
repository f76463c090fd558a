"""The Content-Security-Policy and its neighbours (issue 7, security 4), without a browser:
every answer carries the headers, and no template holds what the policy would refuse (the
browser test, tests/browser/test_csp_browser.py, loads every screen in Chromium)."""

from __future__ import annotations

import re

import pytest

from connector.security import CONTENT_SECURITY_POLICY, origin
from setup_params.models import get_profile
from tests.helpers import PROJECT_DIR

TEMPLATES = sorted((PROJECT_DIR / "templates").rglob("*.html"))
POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)


def test_the_policy_is_the_strict_one():
    assert CONTENT_SECURITY_POLICY == POLICY


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/", "/setup/", "/lifecycle/", "/admin/", "/accounts/login/",
                                  "/healthz", "/queue/data/"])
def test_every_answer_carries_the_policy_and_its_neighbours(manager_client, path):
    response = manager_client.get(path)

    assert response["Content-Security-Policy"] == POLICY
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"


@pytest.mark.django_db
def test_the_acumatica_screen_lets_sign_in_lead_to_the_stored_instance_only(manager_client):
    stored = get_profile().acumatica_settings
    stored.instance_url = "https://integrator:pw@erp.example.com:8443/AcumaticaERP"
    stored.save()

    policy = manager_client.get("/acumatica/connection/")["Content-Security-Policy"]

    assert "form-action 'self' https://erp.example.com:8443" in policy
    assert "pw" not in policy
    assert policy.replace(" https://erp.example.com:8443", "") == POLICY
    assert manager_client.get("/setup/")["Content-Security-Policy"] == POLICY


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://erp.example.com/AcumaticaERP", "https://erp.example.com"),
        ("http://127.0.0.1:8080/x", "http://127.0.0.1:8080"),
        ("https://u:p@[::1]:9443/", "https://[::1]:9443"),
        ("", ""),
        ("javascript:alert(1)", ""),
        ("https://erp.example.com:99999/", ""),
    ],
)
def test_origin(url, expected):
    assert origin(url) == expected


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda path: path.name)
def test_no_template_holds_inline_code_or_style(template):
    html = template.read_text()

    inline_scripts = [tag for tag in re.findall(r"<script\b[^>]*>", html, re.I)
                      if "src=" not in tag and 'type="application/json"' not in tag]
    assert inline_scripts == []
    assert re.findall(r"\son[a-z]+\s*=", html, re.I) == []  # onclick=, onchange=, …
    assert re.findall(r"\sstyle\s*=", html, re.I) == []
    assert "<style" not in html.lower()
    assert "javascript:" not in html.lower()
