"""Who may see and change what.

Every view needs a logged-in user with a role: the `viewer` group (permission
`connector.view`) reads, `connector.manage` changes; anyone else gets 403. A view that
must answer without login (the push receiver, the OAuth callback, /healthz, the
simulators) says so with `@public`, the one way the URL-walk test knows about.
"""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.middleware import LoginRequiredMiddleware
from django.core.exceptions import PermissionDenied

MANAGE_PERMISSION = "connector.manage"
VIEW_PERMISSION = "connector.view"
VIEWER_GROUP = "viewer"

public = login_not_required


def is_public(view_func) -> bool:
    return getattr(view_func, "login_required", True) is False


def can_view(user) -> bool:
    return user.is_authenticated and (
        user.has_perm(VIEW_PERMISSION) or user.has_perm(MANAGE_PERMISSION)
    )


def can_manage(user) -> bool:
    return user.is_authenticated and user.has_perm(MANAGE_PERMISSION)


def manage_required(view_func):
    """For views (or the POST branch of one) that change something."""

    @wraps(view_func)
    def wrapped(request, *args, **kwargs):
        if not can_manage(request.user):
            raise PermissionDenied("Changing the connector needs the manage permission.")
        return view_func(request, *args, **kwargs)

    return wrapped


class RoleRequiredMiddleware(LoginRequiredMiddleware):
    """Login required everywhere (Django's middleware), then a role, unless `@public`."""

    def process_view(self, request, view_func, view_args, view_kwargs):
        if is_public(view_func):
            return None
        response = super().process_view(request, view_func, view_args, view_kwargs)
        if response is not None:
            return response
        if not can_view(request.user):
            raise PermissionDenied("Your account has no role in the connector.")
        return None
