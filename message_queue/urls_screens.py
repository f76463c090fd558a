from django.urls import path

from message_queue import views_screens

urlpatterns = [
    path("queue/", views_screens.queue_dashboard, name="queue_dashboard"),
    path("queue/data/", views_screens.queue_dashboard_data, name="queue_dashboard_data"),
    path("queue/messages/", views_screens.message_search, name="message_search"),
    path("queue/messages/<int:pk>/", views_screens.message_detail, name="message_detail"),
    path("queue/messages/export.csv", views_screens.message_export, name="message_export"),
    path("queue/failed/", views_screens.reprocess_failed, name="reprocess_failed"),
    path("audit/", views_screens.audit_log, name="audit_log"),
]
