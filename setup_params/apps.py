from django.apps import AppConfig
from django.db.models.signals import post_migrate


def ensure_default_profile(sender=None, **kwargs) -> None:
    """A profile named `default` always exists (also after a test database flush)."""
    from setup_params.models import DEFAULT_PROFILE, Profile, create_profile

    if not Profile.objects.filter(name=DEFAULT_PROFILE).exists():
        create_profile(DEFAULT_PROFILE)


class SetupParamsConfig(AppConfig):
    name = "setup_params"
    verbose_name = "Setup parameters"

    def ready(self) -> None:
        post_migrate.connect(ensure_default_profile, sender=self)
