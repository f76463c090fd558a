from django.db import migrations


def add_acumatica_settings(apps, schema_editor):
    Profile = apps.get_model("setup_params", "Profile")
    AcumaticaSettings = apps.get_model("setup_params", "AcumaticaSettings")
    for profile in Profile.objects.filter(acumatica_settings__isnull=True):
        AcumaticaSettings.objects.create(profile=profile)


class Migration(migrations.Migration):
    dependencies = [("setup_params", "0003_acumatica_settings")]

    operations = [migrations.RunPython(add_acumatica_settings, migrations.RunPython.noop)]
