"""The reconciliation report: Acumatica's base prices and quantities against Magento's.

`run_report(run)`:
1. takes the run (queued → running);
2. reads Acumatica's price and inventory inquiries a page at a time (every SKU, or those
   starting with the report's prefix): the price per SKU, and per SKU and Magento source the
   sum of the mapped warehouses' quantities (what the processors would send);
3. reads Magento's source items a page at a time (MSI) and the base prices of every SKU
   either side knows (`base-prices-information`; the SKUs Magento does not know are named);
4. records each difference: a value that differs (or a source item Magento lacks), a SKU
   Magento does not have, a SKU only Magento has.

`fix(run, ids)` queues corrections (*Fix selected* / *Fix all*): each difference's Acumatica
value, as read, goes through the push-notification path (`store_notification`) with a fresh
TimeStamp, newer than what its key has applied, so the processors send it. A key that
changed after the report began is left alone: its newer value is on its way already, and
the report should be run again. A SKU missing on one side cannot be corrected from here: it
needs a product in Magento or an item in Acumatica.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from django.db import transaction
from django.utils import timezone

from connector.acumatica import AcumaticaClient, AcumaticaError
from connector.acumatica_connection import client_for
from connector.crypto import SecretDecryptionError
from connector.magento import MagentoClient, MagentoError
from message_queue.ingest import Notification, map_rows, store_notification
from message_queue.models import Entity, KeyState, ReconcileDifference, ReconcileRun
from message_queue.processing import magento_client_for_profile
from message_queue.pull import LAST_MODIFIED_FIELD, inquiry_for, row_ticks
from setup_params.models import Profile, get_profile

Status = ReconcileRun.Status
Field = ReconcileDifference.Field
Kind = ReconcileDifference.Kind

# Magento keeps prices with 6 decimals, Acumatica with 4 to 6: differences below this are none.
PLACES = Decimal("0.0001")
DIFFERENCES_PER_INSERT = 1000
# A report still queued or running this long lost its worker: it no longer blocks the next.
ABANDONED_AFTER = timedelta(hours=2)
NO_MSI_NOTE = (
    "Quantities were not compared: Magento is set up without MSI, and legacy stock items "
    "have no list endpoint."
)


class ReconcileError(Exception):
    """The report cannot be run now; the text says why."""


@dataclass
class AcumaticaSide:
    prices: dict[str, tuple[Decimal, int]] = field(default_factory=dict)  # sku → (price, ts)
    # (sku, source) → ({warehouse: quantity}, ts)
    quantities: dict[tuple[str, str], tuple[dict[str, float], int]] = field(default_factory=dict)

    def skus(self) -> dict[str, str]:
        """Case-folded SKU → SKU (Magento matches SKUs case-insensitively)."""
        found = {sku.casefold(): sku for sku in self.prices}
        for sku, _ in self.quantities:
            found.setdefault(sku.casefold(), sku)
        return found


@dataclass
class MagentoSide:
    skus: dict[str, str] = field(default_factory=dict)  # case-folded → as Magento has it
    quantities: dict[tuple[str, str], Decimal] = field(default_factory=dict)  # (folded, source)
    prices: dict[str, Decimal] = field(default_factory=dict)  # folded → price
    unknown: set[str] = field(default_factory=set)  # folded SKUs Magento does not know
    compared_quantities: bool = True


@dataclass
class FixResult:
    queued: int = 0
    skipped: list[tuple[ReconcileDifference, str]] = field(default_factory=list)

    def summary(self) -> str:
        text = f"{self.queued} correction{'s' if self.queued != 1 else ''} queued"
        if self.skipped:
            text += f"; {len(self.skipped)} left alone ({self.skipped[0][1]})"
        return text + "."


def amount(value) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return number.quantize(PLACES) if number.is_finite() else None


# --- running a report ------------------------------------------------------------------------


def create_report(profile: Profile, *, sku_prefix: str = "", started_by: str = "system"
                  ) -> ReconcileRun:
    running = ReconcileRun.objects.filter(
        profile=profile, status__in=[Status.QUEUED, Status.RUNNING]
    ).first()
    if running is not None and timezone.now() - running.created_at < ABANDONED_AFTER:
        raise ReconcileError(
            f"A reconciliation report of profile '{profile}' is already running (started by "
            f"{running.started_by or 'system'}): wait for it."
        )
    return ReconcileRun.objects.create(profile=profile, sku_prefix=sku_prefix.strip(),
                                       started_by=started_by)


def start(run: ReconcileRun) -> None:
    """Hand the report to a worker (the `default` queue) once the transaction commits."""
    from message_queue.tasks import run_reconcile

    transaction.on_commit(lambda: run_reconcile.delay(run.pk))


def run_report(run: ReconcileRun, *, acumatica: AcumaticaClient | None = None,
               magento: MagentoClient | None = None) -> ReconcileRun:
    """Compare both sides and record the differences; a failure is recorded on the run."""
    taken = ReconcileRun.objects.filter(pk=run.pk, status=Status.QUEUED).update(
        status=Status.RUNNING
    )
    run.refresh_from_db()
    if taken != 1:
        return run
    profile = get_profile(run.profile.name)
    own_acumatica, own_magento = acumatica is None, magento is None
    try:
        acumatica = acumatica or client_for(profile)
        magento = magento or magento_client_for_profile(profile)
        acumatica_side = read_acumatica(profile, acumatica, run.sku_prefix)
        magento_side = read_magento(profile, magento, run.sku_prefix, acumatica_side)
        differences = compare(profile, acumatica_side, magento_side)
        with transaction.atomic():
            for start_at in range(0, len(differences), DIFFERENCES_PER_INSERT):
                chunk = differences[start_at:start_at + DIFFERENCES_PER_INSERT]
                for difference in chunk:
                    difference.run = run
                ReconcileDifference.objects.bulk_create(chunk)
            run.skus_compared = len(set(acumatica_side.skus()) | set(magento_side.skus))
            run.differences_found = len(differences)
            run.note = "" if magento_side.compared_quantities else NO_MSI_NOTE
            run.status = Status.SUCCEEDED
            run.finished_at = timezone.now()
            run.save(update_fields=["skus_compared", "differences_found", "note", "status",
                                    "finished_at"])
    except (AcumaticaError, MagentoError, SecretDecryptionError, ValueError) as error:
        run.status = Status.FAILED
        run.error = str(error)[:4000]
        run.finished_at = timezone.now()
        run.save(update_fields=["status", "error", "finished_at"])
    finally:
        if own_acumatica and acumatica is not None:
            acumatica.close()
        if own_magento and magento is not None:
            magento.close()
    return run


def _odata_prefix_filter(field_name: str, prefix: str) -> str | None:
    if not prefix:
        return None
    return f"startswith({field_name},'{prefix.replace(chr(39), chr(39) * 2)}')"


def _pages(client: AcumaticaClient, profile: Profile, entity: str, prefix: str):
    inquiry = inquiry_for(profile, entity)
    page_size = profile.acumatica_settings.page_size
    skip = 0
    while True:
        rows = client.odata_gi(inquiry.name, filter=_odata_prefix_filter(inquiry.sku_field, prefix),
                               orderby=inquiry.orderby, select=inquiry.select, top=page_size,
                               skip=skip)
        if rows:
            yield rows
        if len(rows) < page_size:
            return
        skip += page_size


def read_acumatica(profile: Profile, client: AcumaticaClient, prefix: str) -> AcumaticaSide:
    side = AcumaticaSide()
    time_zone = profile.acumatica_settings.time_zone
    for rows in _pages(client, profile, Entity.PRICE, prefix):
        page_ts = _page_ts(rows, time_zone)
        for row in rows:
            sku = str(row.get(profile.price_sku_field) or "").strip()
            price = amount(row.get(profile.price_field))
            if sku and price is not None:
                side.prices[sku] = (price, page_ts)
    sources = profile.warehouse_source_map()
    for rows in _pages(client, profile, Entity.INVENTORY, prefix):
        page_ts = _page_ts(rows, time_zone)
        for row in rows:
            sku = str(row.get(profile.inventory_sku_field) or "").strip()
            warehouse = str(row.get(profile.inventory_warehouse_field) or "").strip()
            quantity = amount(row.get(profile.inventory_qty_field))
            source = sources.get(warehouse) or sources.get("*")
            if not sku or not warehouse or source is None:
                continue
            warehouses, ts = side.quantities.get((sku, source), ({}, 0))
            if quantity is not None:
                warehouses[warehouse] = float(quantity)
            side.quantities[(sku, source)] = (warehouses, max(ts, page_ts))
    return side


def _page_ts(rows: list[dict], time_zone: str) -> int:
    ticks = [row_ticks(row, time_zone) for row in rows if row.get(LAST_MODIFIED_FIELD)]
    return max((value for value in ticks if value is not None), default=0)


def read_magento(profile: Profile, client: MagentoClient, prefix: str,
                 acumatica: AcumaticaSide) -> MagentoSide:
    side = MagentoSide()
    page_size = profile.acumatica_settings.page_size
    if profile.magento_settings.use_msi:
        managed_sources = set(profile.warehouse_source_map().values())
        for page in client.iter_source_items(sku_prefix=prefix or None, page_size=page_size):
            for item in page.items:
                if item.source_code not in managed_sources:
                    continue
                folded = item.sku.casefold()
                side.skus.setdefault(folded, item.sku)
                side.quantities[(folded, item.source_code)] = amount(item.quantity)
    else:
        side.compared_quantities = False
    wanted = {**side.skus, **acumatica.skus()}
    lookup = client.get_base_prices(sorted(wanted.values()))
    side.unknown = {sku.casefold() for sku in lookup.unknown_skus}
    store_id = profile.magento_settings.price_store_id
    for price in sorted(lookup.prices, key=lambda price: price.store_id != store_id):
        if price.store_id in (store_id, 0):
            side.prices.setdefault(price.sku.casefold(), amount(price.price))
    for folded, sku in wanted.items():
        if folded not in side.unknown:
            side.skus.setdefault(folded, sku)
    return side


def compare(profile: Profile, acumatica: AcumaticaSide, magento: MagentoSide
            ) -> list[ReconcileDifference]:
    differences: list[ReconcileDifference] = []
    in_acumatica = acumatica.skus()

    def add(sku, field_name, kind, acumatica_value, magento_value, source_code="", **extra):
        differences.append(ReconcileDifference(
            sku=sku, field=field_name, kind=kind, source_code=source_code,
            acumatica_value=acumatica_value, magento_value=magento_value, **extra,
        ))

    for sku, (price, ts) in sorted(acumatica.prices.items()):
        folded = sku.casefold()
        if folded in magento.unknown:
            add(sku, Field.PRICE, Kind.MISSING_IN_MAGENTO, price, None)
        elif magento.prices.get(folded) != price:
            add(sku, Field.PRICE, Kind.DIFFERENT, price, magento.prices.get(folded),
                source_ts=ts)
    for folded, sku in sorted(magento.skus.items()):
        if folded not in in_acumatica:
            add(sku, Field.PRICE, Kind.MISSING_IN_ACUMATICA, None, magento.prices.get(folded))
    if not magento.compared_quantities:
        return differences
    for (sku, source), (warehouses, ts) in sorted(acumatica.quantities.items()):
        folded = sku.casefold()
        total = amount(sum(warehouses.values())) if warehouses else None
        if folded in magento.unknown:
            add(sku, Field.QUANTITY, Kind.MISSING_IN_MAGENTO, total, None, source)
        elif total is not None and magento.quantities.get((folded, source)) != total:
            add(sku, Field.QUANTITY, Kind.DIFFERENT, total,
                magento.quantities.get((folded, source)), source, warehouses=warehouses,
                source_ts=ts)
    acumatica_sources = {(sku.casefold(), source) for sku, source in acumatica.quantities}
    for (folded, source), quantity in sorted(magento.quantities.items()):
        if folded not in in_acumatica:
            add(magento.skus[folded], Field.QUANTITY, Kind.MISSING_IN_ACUMATICA, None, quantity,
                source)
        elif (folded, source) not in acumatica_sources and quantity:
            # Acumatica has the item but no stock row for this source: nothing to send.
            add(in_acumatica[folded], Field.QUANTITY, Kind.DIFFERENT, None, quantity, source)
    return differences


# --- corrections -----------------------------------------------------------------------------


def fix(run: ReconcileRun, ids: Iterable[int] | None = None, *, actor: str = "system"
        ) -> FixResult:
    """Queue the Acumatica values of these differences (all fixable ones when `ids` is None)
    as messages, through the push-notification path; each is marked as corrected."""
    profile = get_profile(run.profile.name)
    result = FixResult()
    differences = run.differences.filter(fixed_at__isnull=True)
    if ids is not None:
        differences = differences.filter(id__in=list(ids))
    chosen = list(differences)
    for difference in chosen:
        if not difference.fixable:
            result.skipped.append((difference, _why_not(difference)))
    fixable = [difference for difference in chosen if difference.fixable]
    with transaction.atomic():
        for entity, field_name in ((Entity.PRICE, Field.PRICE), (Entity.INVENTORY, Field.QUANTITY)):
            batch = [difference for difference in fixable if difference.field == field_name]
            result.queued += _queue_corrections(profile, run, entity, batch, result, actor)
    return result


def _why_not(difference: ReconcileDifference) -> str:
    if difference.kind == Kind.MISSING_IN_MAGENTO:
        return f"{difference.sku} is not in Magento: create the product there first"
    if difference.kind == Kind.MISSING_IN_ACUMATICA:
        return f"{difference.sku} is not in Acumatica: nothing to send"
    return f"Acumatica has no stock row for {difference.sku} on source {difference.source_code}"


def _rows(profile: Profile, difference: ReconcileDifference) -> list[dict]:
    if difference.field == Field.PRICE:
        return [{profile.price_sku_field: difference.sku,
                 profile.price_field: float(difference.acumatica_value)}]
    return [
        {profile.inventory_sku_field: difference.sku,
         profile.inventory_warehouse_field: warehouse,
         profile.inventory_qty_field: quantity}
        for warehouse, quantity in sorted(difference.warehouses.items())
    ]


def _queue_corrections(profile: Profile, run: ReconcileRun, entity: str,
                       differences: list[ReconcileDifference], result: FixResult, actor: str
                       ) -> int:
    """One notification per batch: a TimeStamp newer than every key's applied one (but no
    newer than needed, so a real change made after the report still wins)."""
    if not differences:
        return 0
    query = inquiry_for(profile, entity).name
    rows_of = {difference.pk: _rows(profile, difference) for difference in differences}
    keys_of = {}
    for difference in differences:
        mapped = map_rows(profile, entity, Notification(query, "fix", 0, rows_of[difference.pk],
                                                        []))
        keys_of[difference.pk] = [change.key for change in mapped.changes]
    states = {
        state.key: state
        for state in KeyState.objects.filter(
            profile=profile, entity=entity,
            key__in=sorted({key for keys in keys_of.values() for key in keys}),
        )
    }
    queued: list[ReconcileDifference] = []
    for difference in differences:
        touched = [states[key] for key in keys_of[difference.pk] if key in states]
        if any(state.updated_at > run.created_at for state in touched):
            result.skipped.append((difference, f"{difference.sku} changed after the report "
                                   "began: run the report again"))
            continue
        if not keys_of[difference.pk]:
            result.skipped.append((difference, _why_not(difference)))
            continue
        queued.append(difference)
    if not queued:
        return 0
    applied = [states[key].source_ts for d in queued for key in keys_of[d.pk] if key in states]
    timestamp = max([ts + 1 for ts in applied] + [d.source_ts for d in queued] + [1])
    batch_size = profile.acumatica_settings.batch_size
    rows = [row for difference in queued for row in rows_of[difference.pk]]
    for start_at in range(0, len(rows), batch_size):
        store_notification(profile, Notification(
            query=query,
            notification_id=f"fix-{run.pk}-{uuid.uuid4().hex[:16]}",
            timestamp=timestamp,
            inserted=rows[start_at:start_at + batch_size],
            deleted=[],
            company_id=profile.acumatica_settings.tenant,
        ))
    now = timezone.now()
    for difference in queued:
        difference.fixed_at = now
        difference.fixed_by = actor
    ReconcileDifference.objects.bulk_update(queued, ["fixed_at", "fixed_by"])
    return len(queued)
