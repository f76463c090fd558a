from django.urls import path

from message_queue import views_sync

urlpatterns = [
    path("sync/", views_sync.sync, name="sync"),
    path("sync/runs.json", views_sync.sync_runs, name="sync_runs"),
    path("sync/reconcile/", views_sync.reconcile_report, name="reconcile"),
    path("sync/reconcile/status.json", views_sync.reconcile_status, name="reconcile_status"),
]
