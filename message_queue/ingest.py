"""Acumatica push notifications become messages (DESIGN.md sections 5 and 7).

`parse_notification` checks the body's shape; `map_rows` turns its rows into the changes it
carries per key; `store_notification` stores them in one transaction with set-based
statements: dedupe by Id + Query, key state (an older TimeStamp never wins), then one upsert
that coalesces into the pending message of each key.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from message_queue.models import (
    Direction,
    Entity,
    KeyState,
    Message,
    ReceivedNotification,
    json_from_cursor,
)
from message_queue.stats import count_unmapped_warehouse_rows
from setup_params.models import Profile

MAX_ROWS = 100_000
MAX_KEY_LENGTH = 200
MAX_TIMESTAMP = 2**63 - 1  # a .NET tick count fits a signed 64-bit integer (BigIntegerField)
KEYS_PER_STATEMENT = 1000


class MalformedNotification(ValueError):
    """The body is not a push notification; the text says what is wrong."""


class UnknownQuery(ValueError):
    """The notification names a generic inquiry this profile does not map."""


@dataclass
class Notification:
    query: str
    notification_id: str
    timestamp: int
    inserted: list[dict]
    deleted: list[dict]
    company_id: str = ""


@dataclass
class KeyChange:
    """What one notification says about one key."""

    key: str
    sku: str
    price: Decimal | None = None
    source_code: str = ""
    warehouse_quantities: dict[str, float] = field(default_factory=dict)


@dataclass
class MappedRows:
    entity: str
    changes: list[KeyChange]
    unmapped_warehouse_rows: int = 0
    unchanged_rows: int = 0


@dataclass
class IngestResult:
    entity: str
    duplicate: bool = False
    rows: int = 0
    keys_changed: int = 0
    stale_keys: int = 0
    unmapped_warehouse_rows: int = 0
    unchanged_rows: int = 0

    def as_json(self) -> dict:
        return {
            "status": "duplicate" if self.duplicate else "stored",
            "entity": self.entity,
            "rows": self.rows,
            "keys_changed": self.keys_changed,
            "older_than_stored": self.stale_keys,
            "unmapped_warehouse_rows": self.unmapped_warehouse_rows,
            "unchanged_rows": self.unchanged_rows,
        }


def parse_notification(body: bytes) -> Notification:
    try:
        document = json.loads(body)
    except RecursionError:
        raise MalformedNotification("The body is nested too deeply.") from None
    except ValueError as error:  # bad JSON, bad UTF-8, an integer of thousands of digits
        raise MalformedNotification(f"The body is not valid JSON: {error}.") from None
    if not isinstance(document, dict):
        raise MalformedNotification("The body must be a JSON object.")
    query = document.get("Query")
    if not isinstance(query, str) or not query.strip():
        raise MalformedNotification("'Query' must be the name of the generic inquiry.")
    _check_storable(query, "'Query'")
    notification_id = document.get("Id")
    if not isinstance(notification_id, str) or not notification_id.strip():
        raise MalformedNotification("'Id' must be the notification's id (a string).")
    if len(notification_id) > 64:
        raise MalformedNotification("'Id' is longer than 64 characters.")
    _check_storable(notification_id, "'Id'")
    timestamp = document.get("TimeStamp")
    if isinstance(timestamp, bool) or not isinstance(timestamp, int) or timestamp < 0:
        raise MalformedNotification("'TimeStamp' must be a non-negative integer (.NET ticks).")
    if timestamp > MAX_TIMESTAMP:
        raise MalformedNotification("'TimeStamp' is larger than a .NET tick count can be.")
    rows = {}
    for name in ("Inserted", "Deleted"):
        value = document.get(name, [])
        if value is None:
            value = []
        if not isinstance(value, list) or not all(isinstance(row, dict) for row in value):
            raise MalformedNotification(f"'{name}' must be a list of objects.")
        rows[name] = value
    if len(rows["Inserted"]) + len(rows["Deleted"]) > MAX_ROWS:
        raise MalformedNotification(f"More than {MAX_ROWS} rows in one notification.")
    company_id = document.get("CompanyId") or ""
    return Notification(
        query=query.strip(),
        notification_id=notification_id.strip(),
        timestamp=timestamp,
        inserted=rows["Inserted"],
        deleted=rows["Deleted"],
        company_id=str(company_id)[:100],
    )


def entity_for_query(profile: Profile, query: str) -> str:
    queries = {profile.inventory_query: Entity.INVENTORY, profile.price_query: Entity.PRICE}
    if query not in queries:
        known = ", ".join(f"'{name}'" for name in queries)
        raise UnknownQuery(f"Unknown Query '{query}'. This profile maps {known}.")
    return queries[query]


def _check_storable(text: str, what: str) -> None:
    """No NUL (PostgreSQL's text refuses it) and no lone surrogate (not encodable as UTF-8)."""
    if "\x00" in text:
        raise MalformedNotification(f"{what} contains a NUL character.")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise MalformedNotification(f"{what} is not valid Unicode text.") from None


def _text(row: dict, field_name: str, where: str) -> str:
    value = row.get(field_name)
    if not isinstance(value, str | int) or isinstance(value, bool) or not str(value).strip():
        raise MalformedNotification(f"{where}: '{field_name}' must be a non-empty string.")
    text = str(value).strip()
    if len(text) > MAX_KEY_LENGTH:
        raise MalformedNotification(f"{where}: '{field_name}' is longer than {MAX_KEY_LENGTH}.")
    _check_storable(text, f"{where}: '{field_name}'")
    return text


def _number(row: dict, field_name: str, where: str) -> Decimal | None:
    value = row.get(field_name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise MalformedNotification(f"{where}: '{field_name}' must be a number or null.")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise MalformedNotification(f"{where}: '{field_name}' must be a number or null.") from None
    if not number.is_finite() or abs(number) > Decimal("1e12"):
        raise MalformedNotification(f"{where}: '{field_name}' is not a usable number.")
    return number


def map_rows(profile: Profile, entity: str, notification: Notification) -> MappedRows:
    if entity == Entity.PRICE:
        return _map_price_rows(profile, notification)
    return _map_inventory_rows(profile, notification)


def _map_price_rows(profile: Profile, notification: Notification) -> MappedRows:
    store_id = profile.magento_settings.price_store_id
    changes: dict[str, KeyChange] = {}
    unchanged = 0
    for index, row in enumerate(notification.inserted):
        where = f"Inserted[{index}]"
        sku = _text(row, profile.price_sku_field, where)
        price = _number(row, profile.price_field, where)
        if price is None:
            unchanged += 1
            continue
        if price < 0:
            raise MalformedNotification(f"{where}: '{profile.price_field}' is negative.")
        key = f"{sku}|{store_id}"
        changes[key] = KeyChange(key=key, sku=sku, price=price)
    for index, row in enumerate(notification.deleted):
        _text(row, profile.price_sku_field, f"Deleted[{index}]")
        unchanged += 1
    return MappedRows(Entity.PRICE, sorted(changes.values(), key=lambda c: c.key),
                      unchanged_rows=unchanged)


def _map_inventory_rows(profile: Profile, notification: Notification) -> MappedRows:
    """Rows per (SKU, warehouse); a Deleted row with no Inserted partner means quantity 0."""
    sources = profile.warehouse_source_map()
    sku_field = profile.inventory_sku_field
    warehouse_field = profile.inventory_warehouse_field
    qty_field = profile.inventory_qty_field
    quantities: dict[tuple[str, str], Decimal | None] = {}
    for index, row in enumerate(notification.deleted):
        where = f"Deleted[{index}]"
        sku = _text(row, sku_field, where)
        warehouse = _text(row, warehouse_field, where)
        _number(row, qty_field, where)
        quantities.setdefault((sku, warehouse), Decimal(0))
    for index, row in enumerate(notification.inserted):
        where = f"Inserted[{index}]"
        sku = _text(row, sku_field, where)
        warehouse = _text(row, warehouse_field, where)
        quantities[(sku, warehouse)] = _number(row, qty_field, where)

    changes: dict[str, KeyChange] = {}
    unmapped = unchanged = 0
    for (sku, warehouse), quantity in quantities.items():
        source = sources.get(warehouse) or sources.get("*")
        if source is None:
            unmapped += 1
            continue
        if quantity is None:
            unchanged += 1
            continue
        key = f"{sku}|{source}"
        change = changes.setdefault(key, KeyChange(key=key, sku=sku, source_code=source))
        change.warehouse_quantities[warehouse] = float(quantity)
    return MappedRows(
        Entity.INVENTORY,
        sorted(changes.values(), key=lambda c: c.key),
        unmapped_warehouse_rows=unmapped,
        unchanged_rows=unchanged,
    )


def store_notification(profile: Profile, notification: Notification) -> IngestResult:
    """Store a notification whole, or not at all; a repeat of Id + Query stores nothing."""
    entity = entity_for_query(profile, notification.query)
    mapped = map_rows(profile, entity, notification)
    result = IngestResult(
        entity=entity,
        rows=len(notification.inserted) + len(notification.deleted),
        unmapped_warehouse_rows=mapped.unmapped_warehouse_rows,
        unchanged_rows=mapped.unchanged_rows,
    )
    with transaction.atomic():
        try:
            with transaction.atomic():
                ReceivedNotification.objects.create(
                    profile=profile,
                    query=notification.query,
                    notification_id=notification.notification_id,
                    source_ts=notification.timestamp,
                    row_count=result.rows,
                )
        except IntegrityError:
            result.duplicate = True
            return result
        for start in range(0, len(mapped.changes), KEYS_PER_STATEMENT):
            chunk = mapped.changes[start:start + KEYS_PER_STATEMENT]
            fresh = apply_key_state(profile, entity, chunk, notification.timestamp)
            upsert_pending_messages(profile, entity, fresh, notification)
            result.keys_changed += len(fresh)
        result.stale_keys = len(mapped.changes) - result.keys_changed
        count_unmapped_warehouse_rows(profile, result.unmapped_warehouse_rows)
    return result


def apply_key_state(
    profile: Profile, entity: str, changes: list[KeyChange], timestamp: int
) -> list[KeyChange]:
    """Record each key's newest values; answer the changes that are not older than stored."""
    if not changes:
        return []
    keys = [change.key for change in changes]
    now = timezone.now()
    states = lock_key_states(profile, entity, keys, now)
    fresh: list[KeyChange] = []
    touched: list[KeyState] = []
    for change in changes:
        state = states[change.key]
        if entity == Entity.INVENTORY:
            applied = False
            for warehouse, quantity in change.warehouse_quantities.items():
                if state.warehouse_timestamps.get(warehouse, -1) <= timestamp:
                    state.warehouse_quantities[warehouse] = quantity
                    state.warehouse_timestamps[warehouse] = timestamp
                    applied = True
            if not applied:
                continue
            state.source_ts = max(state.source_ts, timestamp)
        else:
            if state.source_ts > timestamp:
                continue
            state.source_ts = timestamp
        state.updated_at = now
        touched.append(state)
        fresh.append(change)
    save_key_states(touched, now)
    return fresh


def lock_key_states(profile: Profile, entity: str, keys: list[str], now) -> dict[str, KeyState]:
    """Each key's state, created if new, locked until commit in key order (so concurrent
    receivers queue instead of deadlocking).

    On PostgreSQL the keys travel as one array: the statements' text is the same for every
    notification, and no model instance is built for a key that exists.
    """
    if connection.vendor != "postgresql":
        KeyState.objects.bulk_create(
            [KeyState(profile=profile, entity=entity, key=key, source_ts=-1) for key in keys],
            ignore_conflicts=True,
        )
        return {
            state.key: state
            for state in KeyState.objects.select_for_update()
            .filter(profile=profile, entity=entity, key__in=keys)
            .order_by("key")
        }
    keys = sorted(keys)
    table = KeyState._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (profile_id, entity, key, source_ts, warehouse_quantities, "
            "warehouse_timestamps, updated_at) "
            "SELECT %s, %s, k, -1, '{}', '{}', %s FROM unnest(%s::text[]) AS u(k) "
            "ON CONFLICT (profile_id, entity, key) DO NOTHING",
            [profile.pk, entity, now, keys],
        )
        # A look-up per key in the array's (sorted) order: the order the rows are locked in,
        # and a plan that stays an index look-up while the table has no statistics yet.
        cursor.execute(
            "SELECT s.id, s.key, s.source_ts, s.warehouse_quantities, s.warehouse_timestamps "
            "FROM unnest(%s::text[]) AS k(key) CROSS JOIN LATERAL ("
            f"SELECT * FROM {table} WHERE profile_id = %s AND entity = %s AND key = k.key "
            "OFFSET 0 FOR UPDATE) AS s",
            [keys, profile.pk, entity],
        )
        rows = cursor.fetchall()
    return {
        key: KeyState(id=state_id, profile=profile, entity=entity, key=key, source_ts=source_ts,
                      warehouse_quantities=json_from_cursor(quantities),
                      warehouse_timestamps=json_from_cursor(timestamps))
        for state_id, key, source_ts, quantities, timestamps in rows
    }


def save_key_states(states: list[KeyState], now) -> None:
    if not states:
        return
    if connection.vendor != "postgresql":
        KeyState.objects.bulk_update(
            states, ["source_ts", "warehouse_quantities", "warehouse_timestamps", "updated_at"]
        )
        return
    table = KeyState._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET source_ts = u.ts, warehouse_quantities = CAST(u.wq AS jsonb), "
            "warehouse_timestamps = CAST(u.wt AS jsonb), updated_at = %s "
            "FROM unnest(%s::bigint[], %s::bigint[], %s::text[], %s::text[]) AS u(id, ts, wq, wt) "
            f"WHERE {table}.id = u.id",
            [now, [state.pk for state in states], [state.source_ts for state in states],
             [json.dumps(state.warehouse_quantities) for state in states],
             [json.dumps(state.warehouse_timestamps) for state in states]],
        )


def message_payload(change: KeyChange, entity: str, store_id: int) -> dict:
    if entity == Entity.PRICE:
        return {"sku": change.sku, "price": float(change.price), "store_id": store_id}
    return {
        "sku": change.sku,
        "source_code": change.source_code,
        "warehouses": change.warehouse_quantities,
    }


def upsert_pending_messages(
    profile: Profile, entity: str, changes: list[KeyChange], notification: Notification
) -> None:
    """One statement: a new pending row per key, or the newer value into the pending one.

    On PostgreSQL the rows travel as three arrays, so the statement's text is the same for
    every notification (parsed once, not once per row count); SQLite gets a VALUES list.
    """
    if not changes:
        return
    now = timezone.now()
    store_id = profile.magento_settings.price_store_id
    table = Message._meta.db_table
    columns = (
        "profile_id, entity, direction, key, sku, payload, source_ts, status, attempts, "
        "next_attempt_at, last_error, source_notification_id, created_at, updated_at, "
        "reprocessed_by, dismissed_reason"
    )
    keys = [change.key for change in changes]
    skus = [change.sku for change in changes]
    payloads = [json.dumps(message_payload(change, entity, store_id)) for change in changes]
    shared = [notification.timestamp, now, notification.notification_id, now, now]
    if connection.vendor == "postgresql":
        rows = (
            "SELECT %s, %s, %s, k, s, CAST(p AS jsonb), %s, 'pending', 0, %s, '', %s, %s, %s, "
            "'', '' FROM unnest(%s::text[], %s::text[], %s::text[]) AS u(k, s, p)"
        )
        parameters = [profile.pk, entity, Direction.TO_MAGENTO, *shared, keys, skus, payloads]
    else:
        row = "(%s, %s, %s, %s, %s, %s, %s, 'pending', 0, %s, '', %s, %s, %s, '', '')"
        rows = "VALUES " + ", ".join([row] * len(changes))
        parameters = []
        for key, sku, payload in zip(keys, skus, payloads, strict=True):
            parameters += [profile.pk, entity, Direction.TO_MAGENTO, key, sku, payload, *shared]
    sql = (
        f"INSERT INTO {table} ({columns}) {rows}"
        " ON CONFLICT (profile_id, entity, key) WHERE status = 'pending' DO UPDATE SET "
        "payload = excluded.payload, source_ts = excluded.source_ts, "
        "source_notification_id = excluded.source_notification_id, "
        "updated_at = excluded.updated_at "
        f"WHERE {table}.source_ts <= excluded.source_ts"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, parameters)
