from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from connector import views, views_lifecycle

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("lifecycle/", views_lifecycle.lifecycle, name="lifecycle"),
    path("lifecycle/run.json", views_lifecycle.lifecycle_run, name="lifecycle_run"),
    path("lifecycle/package.zip", views_lifecycle.lifecycle_package, name="lifecycle_package"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("", include("setup_params.urls")),
    path("", include("message_queue.urls")),
    path("", include("message_queue.urls_screens")),
    path("", include("message_queue.urls_sync")),
]

if settings.SANDBOX_ENABLED:
    urlpatterns.append(path("sandbox/", include("sandbox.urls")))
