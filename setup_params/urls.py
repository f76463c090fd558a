from django.urls import path

from setup_params import views

urlpatterns = [
    path("setup/", views.setup_parameters, name="setup_parameters"),
    path("acumatica/connection/", views.acumatica_connection, name="acumatica_connection"),
    path("acumatica/oauth/sign-in/", views.acumatica_oauth_start, name="acumatica_oauth_start"),
    path(
        "acumatica/oauth/callback/",
        views.acumatica_oauth_callback,
        name="acumatica_oauth_callback",
    ),
]
