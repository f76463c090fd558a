"""Mounted at /sandbox/ by connector.urls, only while SANDBOX_ENABLED."""

from django.urls import path

from sandbox import views

urlpatterns = [
    path("", views.sandbox_catalog, name="sandbox_catalog"),
    path("catalog.json", views.sandbox_catalog_data, name="sandbox_catalog_data"),
    path("simulate", views.sandbox_simulate, name="sandbox_simulate"),
    path("control/simulate", views.control_simulate, name="sandbox_control_simulate"),
    path("magento/", views.magento_mount, name="sandbox_magento"),
    path("magento/<path:path>", views.magento_mount, name="sandbox_magento"),
    path("acumatica/", views.acumatica_mount, name="sandbox_acumatica"),
    path("acumatica/<path:path>", views.acumatica_mount, name="sandbox_acumatica"),
]
