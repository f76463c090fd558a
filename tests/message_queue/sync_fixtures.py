"""What the load, catch-up and reconciliation tests share: an Acumatica simulator served and
connected to the profile, with the connector's inquiries published and their push
notifications switched off (so only pulling moves anything), and catalogs on both sides."""

from __future__ import annotations

import base64
import json
from collections import Counter
from contextlib import contextmanager
from datetime import UTC, datetime

from connector.acumatica_project import connector_project
from message_queue.models import Entity, Status
from message_queue.processing import run_pass
from sandbox.acumatica import DEFAULT_PASSWORD, DEFAULT_TENANT, DEFAULT_USERNAME
from sandbox.server import serve
from setup_params.models import Profile, get_profile


class Clock:
    """A settable clock for the Acumatica simulator and for `now=` of the pull functions."""

    def __init__(self, moment: datetime | None = None) -> None:
        self.now = (moment or datetime.now(UTC)).timestamp()

    def __call__(self) -> float:
        return self.now

    def moment(self) -> datetime:
        return datetime.fromtimestamp(self.now, UTC)

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _call(simulator, method: str, path: str, body=None, cookie: str = ""):
    headers = {"Host": "acumatica.test", "Content-Type": "application/json"}
    if cookie:
        headers["Cookie"] = cookie
    status, answer_headers, answer = simulator.handle(
        method, path, headers, json.dumps(body).encode() if body is not None else b""
    )
    return status, answer_headers, answer


def publish_inquiries(simulator, profile: Profile, *, push_active: bool = False) -> None:
    """Import and publish the connector's project, as Initialize does (push notifications
    inactive unless asked: a change in Acumatica then reaches nobody until it is pulled)."""
    project = connector_project(profile, active=push_active)
    credentials = {"name": DEFAULT_USERNAME, "password": DEFAULT_PASSWORD,
                   "tenant": DEFAULT_TENANT}
    status, headers, _ = _call(simulator, "POST", "/entity/auth/login", credentials)
    assert status == 204
    cookie = "; ".join(
        value.split(";", 1)[0] for name, value in headers.items() if name == "Set-Cookie"
    )
    imported = {
        "projectName": project.name, "projectDescription": project.description,
        "projectLevel": 0, "isReplaceIfExists": True,
        "projectContentBase64": base64.b64encode(project.package()).decode(),
    }
    assert _call(simulator, "POST", "/CustomizationApi/import", imported, cookie)[0] == 200
    begin = {"projectNames": [project.name], "tenantMode": "Current",
             "isMergeWithExistingPackages": True}
    _call(simulator, "POST", "/CustomizationApi/publishBegin", begin, cookie)
    for _ in range(20):
        _, _, answer = _call(simulator, "POST", "/CustomizationApi/publishEnd", {}, cookie)
        if json.loads(answer)["isCompleted"]:
            break
    _call(simulator, "POST", "/entity/auth/logout", None, cookie)
    assert {profile.inventory_query, profile.price_query} <= set(simulator.published_inquiries())


@contextmanager
def connected_acumatica(simulator, profile: Profile, **settings):
    """Serve the simulator and point the profile's Acumatica settings at it."""
    with serve(simulator) as base_url:
        stored = profile.acumatica_settings
        stored.instance_url = base_url
        stored.tenant = DEFAULT_TENANT
        stored.username = DEFAULT_USERNAME
        stored.password = DEFAULT_PASSWORD
        stored.timeout = 10
        stored.time_zone = "America/New_York"
        for name, value in settings.items():
            setattr(stored, name, value)
        stored.save()
        publish_inquiries(simulator, profile)
        yield simulator


def sku(number: int) -> str:
    return f"SKU{number:05d}"


def catalog(acumatica, magento, count: int, *, in_magento: bool = True) -> None:
    """`count` items: a price, stock in MAIN (and every third one in RETAIL too) in Acumatica;
    the same SKUs in Magento at price 1 and no stock, as a store before its first load."""
    for number in range(count):
        stock = {"MAIN": number % 97}
        if number % 3 == 0:
            stock["RETAIL"] = 2
        acumatica.add_item(sku(number), price=round(5 + (number % 500) * 0.25, 2), stock=stock)
        if in_magento:
            magento.add_product(sku(number), price=1, sources={"default": 0})


def drain(profile_name: str = "default", *, rounds: int = 20) -> None:
    """Run the processors (one pass per entity) until nothing is pending."""
    for _ in range(rounds):
        profile = get_profile(profile_name)
        left = sum(run_pass(profile, entity).left for entity in Entity.values)
        if left == 0:
            return
    raise AssertionError("the queue did not drain")


def records_sent(magento) -> Counter:
    """(endpoint, SKU) → how many records Magento got for it (successful calls only)."""
    counts: Counter = Counter()
    for entry in magento.requests:
        if entry.method != "POST" or entry.status != 200 or not entry.json_body:
            continue
        for record in entry.json_body.get("prices") or []:
            counts[("price", record["sku"])] += 1
        for record in entry.json_body.get("sourceItems") or []:
            counts[("stock", record["sku"])] += 1
    return counts


def mismatches(acumatica, magento, *, limit: int = 10) -> list[str]:
    """SKUs whose Magento price or default-source quantity differs from Acumatica's."""
    found = []
    with acumatica._lock:
        items = list(acumatica.items.values())
    for item in items:
        quantity = sum(stock.qty_available for stock in item.stock.values())
        price = magento.price_of(item.inventory_id)
        stocked = magento.quantity_of(item.inventory_id)
        if price != item.default_price or stocked != quantity:
            found.append(f"{item.inventory_id}: price {price} vs {item.default_price}, "
                         f"quantity {stocked} vs {quantity}")
            if len(found) >= limit:
                break
    return found


def pending_count(profile: Profile) -> int:
    return profile.messages.filter(status=Status.PENDING).count()
