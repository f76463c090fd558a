from __future__ import annotations

from django import template
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html

register = template.Library()


@register.simple_tag(takes_context=True)
def nav_link(context, url_name: str, label: str) -> str:
    """A navigation item; a screen not built yet shows greyed out instead of a dead link."""
    try:
        url = reverse(url_name)
    except NoReverseMatch:
        return format_html(
            '<li class="nav-item">'
            '<span class="nav-link disabled" title="Coming soon">{}</span></li>',
            label,
        )
    request = context.get("request")
    active = request is not None and request.path == url
    if active:
        return format_html(
            '<li class="nav-item"><a class="nav-link active" href="{}" aria-current="page">{}'
            "</a></li>",
            url,
            label,
        )
    return format_html('<li class="nav-item"><a class="nav-link" href="{}">{}</a></li>', url, label)
