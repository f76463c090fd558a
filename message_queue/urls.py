from django.urls import path

from message_queue import views_receiver

urlpatterns = [
    path("acumatica/push/<slug:profile>/", views_receiver.acumatica_push, name="acumatica_push"),
]
