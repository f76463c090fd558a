"""The Content-Security-Policy every answer carries.

Django 5.2 has no CSP of its own, and the connector's policy is one fixed string: scripts,
styles, images and fetches come from this site only (Bootstrap and Chart.js are served from
`static/vendor/`), nothing may frame a screen, and forms post only here. So no template
has inline `<script>` code, `on…=` handlers or `style=` attributes: a page's data travels in
`data-` attributes or `json_script` (JSON in a script element is not run, so the policy
allows it). Styles set through the CSSOM (`element.style.width = …`, as Bootstrap and
Chart.js do) are not inline styles and are allowed. `data:` images are for Bootstrap's
icons, which its stylesheet embeds as SVG data URIs.

`form-action` also binds the redirects that follow a form's post: Sign in with Acumatica
posts here and is redirected to the Acumatica instance's authorize page, so the Acumatica
Connection screen allows form posts to that instance's origin as well (and only that one).
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from django.http import HttpRequest, HttpResponse

HEADER = "Content-Security-Policy"
DIRECTIVES = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "connect-src": "'self'",
    "frame-ancestors": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
}


def content_security_policy(*, form_action: tuple[str, ...] = ()) -> str:
    """The policy; `form_action` adds origins a form's post may lead to."""
    directives = dict(DIRECTIVES)
    if form_action:
        directives["form-action"] = " ".join([directives["form-action"], *form_action])
    return "; ".join(f"{name} {sources}" for name, sources in directives.items())


CONTENT_SECURITY_POLICY = content_security_policy()


def origin(url: str) -> str:
    """`https://erp.example.com:8443` of a URL (never its user or password), or ""."""
    parts = urlsplit(url)
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        return ""
    if parts.scheme not in ("http", "https") or not host:
        return ""
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "")


def allow_form_posts_to(response: HttpResponse, url: str) -> HttpResponse:
    """Let this page's forms lead (through a redirect) to `url`'s origin."""
    target = origin(url)
    if target:
        response.headers[HEADER] = content_security_policy(form_action=(target,))
    return response


class ContentSecurityPolicyMiddleware:
    """Adds the policy to every response that has none of its own."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault(HEADER, CONTENT_SECURITY_POLICY)
        return response
