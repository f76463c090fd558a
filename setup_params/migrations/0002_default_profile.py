from django.db import migrations


def create_default_profile(apps, schema_editor):
    from connector.crypto import encrypt
    from setup_params.models import new_push_secret

    Profile = apps.get_model("setup_params", "Profile")
    profile, created = Profile.objects.get_or_create(name="default")
    if not profile.push_secret_encrypted:
        profile.push_secret_encrypted = encrypt(new_push_secret())
        profile.save(update_fields=["push_secret_encrypted"])
    apps.get_model("setup_params", "MagentoSettings").objects.get_or_create(profile=profile)
    apps.get_model("setup_params", "QueueSettings").objects.get_or_create(profile=profile)


class Migration(migrations.Migration):
    dependencies = [("setup_params", "0001_initial")]

    operations = [migrations.RunPython(create_default_profile, migrations.RunPython.noop)]
