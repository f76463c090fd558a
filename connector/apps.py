from django.apps import AppConfig
from django.db.models.signals import post_migrate


def ensure_roles(sender=None, **kwargs) -> None:
    """The `viewer` group with the view permission (also after a test database flush)."""
    from django.contrib.auth.models import Group, Permission
    from django.contrib.contenttypes.models import ContentType

    content_type, _ = ContentType.objects.get_or_create(
        app_label="connector", model="connectorrole"
    )
    view, _ = Permission.objects.get_or_create(
        content_type=content_type,
        codename="view",
        defaults={"name": "Can see the connector's dashboards and lists"},
    )
    Permission.objects.get_or_create(
        content_type=content_type,
        codename="manage",
        defaults={"name": "Can change the connector's settings and act on its queue"},
    )
    viewer, _ = Group.objects.get_or_create(name="viewer")
    viewer.permissions.add(view)


class ConnectorConfig(AppConfig):
    name = "connector"
    verbose_name = "Connector"

    def ready(self) -> None:
        post_migrate.connect(ensure_roles, sender=self)
