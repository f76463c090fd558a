from django.apps import AppConfig


class MessageQueueConfig(AppConfig):
    name = "message_queue"
    verbose_name = "Message queue"
