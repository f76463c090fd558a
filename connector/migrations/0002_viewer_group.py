from django.db import migrations

PERMISSIONS = {
    "manage": "Can change the connector's settings and act on its queue",
    "view": "Can see the connector's dashboards and lists",
}


def create_roles(apps, schema_editor):
    """Permissions are normally made after migrate; the group needs them now."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    content_type, _ = ContentType.objects.get_or_create(app_label="connector", model="connectorrole")
    permissions = {
        codename: Permission.objects.get_or_create(
            content_type=content_type, codename=codename, defaults={"name": name}
        )[0]
        for codename, name in PERMISSIONS.items()
    }
    viewer, _ = Group.objects.get_or_create(name="viewer")
    viewer.permissions.add(permissions["view"])


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name="viewer").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("connector", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
