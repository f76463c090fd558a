"""Every screen needs a login and a role; only views marked `@public` answer without."""

from __future__ import annotations

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from connector.roles import is_public


def walk(resolver: URLResolver, prefix: str = ""):
    for pattern in resolver.url_patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from walk(pattern, route)
        elif isinstance(pattern, URLPattern):
            yield route, pattern.callback


def concrete_path(route: str) -> str:
    """Turn a route such as `push/<slug:profile>/` or `^(?P<id>.+)/$` into a path to request."""
    path = re.sub(r"<(?:int:)?\w+>", "1", route)
    path = re.sub(r"<\w+:\w+>", "default", path)
    path = re.sub(r"\(\?P<\w+>[^)]*\)", "1", path)
    path = path.replace("^", "").replace("$", "").replace("\\", "")
    path = re.sub(r"\(\?:[^)]*\)\??", "", path)
    return "/" + path


ALL_ROUTES = sorted(walk(get_resolver()), key=lambda item: item[0])
PRIVATE_ROUTES = [(route, view) for route, view in ALL_ROUTES if not is_public(view)]
PUBLIC_ROUTES = [route for route, view in ALL_ROUTES if is_public(view)]


def test_the_walk_sees_the_screens_and_the_public_endpoints():
    assert len(PRIVATE_ROUTES) > 10
    assert "healthz" in PUBLIC_ROUTES
    assert "accounts/login/" in PUBLIC_ROUTES


@pytest.mark.django_db
@pytest.mark.parametrize("route", [route for route, _ in PRIVATE_ROUTES])
def test_every_private_url_sends_an_anonymous_user_to_login(anonymous_client, route):
    response = anonymous_client.get(concrete_path(route))
    assert response.status_code == 302, route
    assert response["Location"].startswith("/accounts/login/") or "/login/" in response["Location"]


@pytest.mark.django_db
@pytest.mark.parametrize("route", [route for route, _ in PRIVATE_ROUTES])
def test_every_private_url_refuses_a_user_with_no_role(nobody_client, route):
    response = nobody_client.get(concrete_path(route))
    assert response.status_code == 403, route


@pytest.mark.django_db
def test_a_viewer_sees_the_home_page(viewer_client):
    response = viewer_client.get("/")
    assert response.status_code == 200
    assert b"(read-only)" in response.content


@pytest.mark.django_db
def test_a_manager_sees_the_home_page_without_read_only_mark(manager_client):
    response = manager_client.get("/")
    assert response.status_code == 200
    assert b"(read-only)" not in response.content


@pytest.mark.django_db
def test_the_viewer_group_exists_after_migrate_with_only_the_view_permission():
    from django.contrib.auth.models import Group

    viewer = Group.objects.get(name="viewer")
    assert sorted(viewer.permissions.values_list("codename", flat=True)) == ["view"]


@pytest.mark.django_db
def test_login_page_logs_a_user_in_and_lands_on_home(client, manager):
    page = client.get("/")
    assert page.status_code == 302
    login = client.get(page["Location"])
    assert b"Log in to the connector" in login.content
    response = client.post(
        "/accounts/login/", {"username": "manager", "password": "pw-manager", "next": "/"}
    )
    assert response.status_code == 302
    assert client.get("/").status_code == 200


@pytest.mark.django_db
def test_a_tripped_outage_guard_shows_a_red_banner_on_every_screen(viewer_client):
    from django.utils import timezone

    from message_queue.models import OutageGuard
    from setup_params.models import get_profile

    OutageGuard.objects.create(profile=get_profile(), entity="price", tripped=True,
                               tripped_at=timezone.now(), last_error="Magento said 401")
    html = viewer_client.get("/").content.decode()
    assert "data-outage-banner" in html
    assert "Magento said 401" in html
