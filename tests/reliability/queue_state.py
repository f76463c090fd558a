"""What the fault tests read back: the queue's statuses and what Magento holds."""

from __future__ import annotations

from collections import Counter

from message_queue.models import Message, Status
from sandbox.magento import MagentoSimulator
from setup_params.models import Profile, get_profile

PRICES = "/V1/products/base-prices"
SOURCE_ITEMS = "/V1/inventory/source-items"
PROCESSOR_TASK = "message_queue.tasks.run_processor"


def set_queue_settings(profile: Profile, **values) -> Profile:
    for name, value in values.items():
        setattr(profile.queue_settings, name, value)
    profile.queue_settings.save()
    return get_profile(profile.name)


def set_magento_timeout(profile: Profile, seconds: int) -> Profile:
    profile.magento_settings.timeout = seconds
    profile.magento_settings.save()
    return get_profile(profile.name)


def statuses() -> dict[str, int]:
    """How many messages have each status (only the statuses that occur)."""
    return dict(Counter(Message.objects.values_list("status", flat=True)))


def count(status: str) -> int:
    return Message.objects.filter(status=status).count()


def sent_but_not_at_magento(magento: MagentoSimulator) -> list[str]:
    """Price messages marked sent whose price Magento does not hold: always empty."""
    return [
        f"{message.sku}: sent {message.payload['price']}, Magento has "
        f"{magento.price_of(message.sku)}"
        for message in Message.objects.filter(entity="price", status=Status.SENT)
        if magento.price_of(message.sku) != message.payload["price"]
    ]


def skus_sent(magento: MagentoSimulator) -> Counter:
    """How often each SKU went to Magento's base-prices endpoint (answered or not)."""
    return Counter(
        row["sku"] for call in magento.calls(PRICES) for row in call.json_body["prices"]
    )
