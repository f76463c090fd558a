from django.urls import path

from setup_params import views

urlpatterns = [
    path("setup/", views.setup_parameters, name="setup_parameters"),
]
