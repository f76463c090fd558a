from django.apps import AppConfig


class SetupParamsConfig(AppConfig):
    name = "setup_params"
    verbose_name = "Setup parameters"
