"""Push notifications as Acumatica sends them, for the queue's tests."""

from __future__ import annotations

import itertools
import json

from django.test import Client

from setup_params.models import Profile

_notification_ids = itertools.count(1)


def notification(query: str, inserted=(), deleted=(), *, timestamp: int = 1, id: str = "") -> dict:
    return {
        "Inserted": list(inserted),
        "Deleted": list(deleted),
        "Query": query,
        "CompanyId": "MyStore",
        "Id": id or f"00000000-0000-0000-0000-{next(_notification_ids):012d}",
        "TimeStamp": timestamp,
        "AdditionalInfo": {"PXPerformanceInfoStartTime": "03/20/2025 09:22:24"},
    }


def price_rows(skus_and_prices):
    return [{"InventoryID": sku, "DefaultPrice": price} for sku, price in skus_and_prices]


def stock_rows(rows):
    return [
        {"InventoryID": sku, "Warehouse": warehouse, "QtyAvailable": qty, "QtyOnHand": qty}
        for sku, warehouse, qty in rows
    ]


class Pusher:
    """Posts push notifications the way Acumatica does."""

    def __init__(self, profile: Profile):
        self.profile = profile
        self.client = Client()

    def post(self, body, *, secret: str | None = "", header: str | None = None, **extra):
        headers = {}
        name = header or self.profile.push_header_name
        if secret is not None:
            headers[name] = secret or self.profile.push_secret
        data = body if isinstance(body, bytes | str) else json.dumps(body)
        return self.client.post(
            f"/acumatica/push/{self.profile.name}/", data=data,
            content_type="application/json", headers=headers, **extra,
        )

    def prices(self, rows, *, timestamp: int = 1, **kwargs):
        body = notification(self.profile.price_query, price_rows(rows), timestamp=timestamp,
                            **kwargs)
        response = self.post(body)
        assert response.status_code == 200, response.content
        return response

    def stock(self, rows, *, deleted=(), timestamp: int = 1, **kwargs):
        body = notification(self.profile.inventory_query, stock_rows(rows),
                            stock_rows(deleted), timestamp=timestamp, **kwargs)
        response = self.post(body)
        assert response.status_code == 200, response.content
        return response
