"""Reading Acumatica's generic inquiries into the queue: the initial load and the catch-up.

Both read the connector's inquiries (the profile's inventory and price inquiries, e.g.
MC-Inventory and MC-Prices) over OData, a page at a time (`$top` = page size, `$skip`,
`$orderby` the key fields), and store the rows through the path push notifications take
(`message_queue.ingest.store_notification`): key state, "an older TimeStamp never wins",
coalescing into the pending message of each key. The processors then send them as usual.

How a page of rows becomes push notifications:
- one notification per chunk of at most *batch size* rows; its Id is
  `load-<run>-<skip>-<chunk>-<digest of the rows>` (`catchup-…` for a catch-up), so a page
  read again with the same rows (a resumed or repeated run) stores nothing twice;
- its TimeStamp is the newest LastModifiedDateTime on the page, as .NET ticks. A page is one
  read: no row on it changed between that moment and the read (a change would have moved its
  LastModifiedDateTime past it), so no value is claimed newer than it is, while a change made
  after the read carries a later TimeStamp and wins;
- a row whose own LastModifiedDateTime is not newer than the TimeStamp its key (or, for
  stock, its warehouse) already has is left out: that version is applied, and storing it
  again would only send the same value again (a catch-up's time-offset overlap, a re-read).

A run (`LoadRun`, one inquiry):
1. is taken: queued → running (a running run whose worker stopped saving progress is taken
   over), so a Celery message delivered twice finds it taken;
2. counts the inquiry's rows when the first page is full (`$top=1` probes of `$skip`);
3. reads pages from `next_skip`; each batch of pages is stored in one transaction with the
   run's progress, so a resumed run starts exactly after what was stored; between pages it
   looks at its cancel flag;
4. ends succeeded, cancelled or failed (the error kept); Resume continues at `next_skip`.

A catch-up reads the rows changed after the entity's watermark less the time offset
(`modified_since_filter`: written in the instance's time zone with the UTC offset in force
at that instant, so a daylight-saving change loses nothing) and, once every row is stored,
moves the watermark to the moment its read began.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from connector.acumatica import (
    AcumaticaClient,
    AcumaticaError,
    datetime_to_ticks,
    modified_since_filter,
    parse_acumatica_datetime,
)
from connector.acumatica_connection import client_for
from connector.acumatica_project import LAST_MODIFIED_CAPTION
from connector.crypto import SecretDecryptionError
from message_queue.ingest import (
    MalformedNotification,
    Notification,
    UnknownQuery,
    map_rows,
    store_notification,
)
from message_queue.models import Entity, KeyState, LoadRun, Message, PullSettings
from setup_params.models import Profile, get_profile

logger = logging.getLogger(__name__)

Kind = LoadRun.Kind
Status = LoadRun.Status
Clock = Callable[[], datetime]
ProgressCallback = Callable[[LoadRun], None]

# The column of the connector's inquiries that the catch-up filters on (Initialize publishes
# it: the warehouse status's for stock, the item's for prices).
LAST_MODIFIED_FIELD = LAST_MODIFIED_CAPTION
# A running run silent for this long lost its worker: it may be taken over (a redelivered
# task) or resumed from the screen. It says it is alive before every page, and one request
# waits at most the Acumatica timeout (600 s at most).
STALE_AFTER = timedelta(minutes=15)
ID_PREFIXES = {Kind.LOAD: "load", Kind.CATCH_UP: "catchup"}
MALFORMED_ROWS_SHOWN = 3
# A run refreshes PostgreSQL's statistics of the queue's tables after queueing this many keys
# (then after four times as many, and so on) and when it ends.
ANALYZE_AFTER_KEYS = 1000
CATCH_UP_STATES = (Profile.State.ACTIVE, Profile.State.PAUSED)


class LoadError(Exception):
    """The action cannot be done now; the text says why."""


@dataclass
class Inquiry:
    """How one entity's generic inquiry is read."""

    name: str
    orderby: str
    select: str
    sku_field: str


@dataclass
class PageResult:
    rows: int = 0
    keys_changed: int = 0
    already_applied: int = 0
    malformed: list[str] = field(default_factory=list)

    def add(self, other: PageResult) -> None:
        self.rows += other.rows
        self.keys_changed += other.keys_changed
        self.already_applied += other.already_applied
        self.malformed += other.malformed


def pull_settings(profile: Profile) -> PullSettings:
    settings, _ = PullSettings.objects.get_or_create(profile=profile)
    return settings


def inquiry_for(profile: Profile, entity: str) -> Inquiry:
    if entity == Entity.PRICE:
        fields = [profile.price_sku_field, profile.price_field]
        return Inquiry(profile.price_query, profile.price_sku_field,
                       ",".join([*fields, LAST_MODIFIED_FIELD]), profile.price_sku_field)
    keys = [profile.inventory_sku_field, profile.inventory_warehouse_field]
    return Inquiry(profile.inventory_query, ",".join(keys),
                   ",".join([*keys, profile.inventory_qty_field, LAST_MODIFIED_FIELD]),
                   profile.inventory_sku_field)


# --- creating, starting, cancelling and resuming runs ----------------------------------------


def abandon_stale_runs(profile: Profile) -> int:
    """Running runs whose worker stopped saving progress: failed, so they can be resumed."""
    cutoff = timezone.now() - STALE_AFTER
    return LoadRun.objects.for_profile(profile).filter(
        status=Status.RUNNING, updated_at__lt=cutoff
    ).update(
        status=Status.FAILED,
        error="The worker reading this run stopped: resume it to continue where it was.",
        finished_at=timezone.now(),
    )


def in_progress_run(profile: Profile, entity: str) -> LoadRun | None:
    abandon_stale_runs(profile)
    return LoadRun.objects.for_profile(profile).in_progress().filter(entity=entity).first()


def _refuse_while_running(profile: Profile, entity: str, *, other_than: int | None = None) -> None:
    running = in_progress_run(profile, entity)
    if running is not None and running.pk != other_than:
        raise LoadError(
            f"A {running.get_kind_display().lower()} of {running.get_entity_display()} for "
            f"profile '{profile}' is already {running.get_status_display().lower()} (run "
            f"{running.pk}, started by {running.started_by or 'system'}): wait for it or "
            "cancel it."
        )


def create_run(
    profile: Profile,
    entity: str,
    *,
    kind: str = Kind.LOAD,
    since: datetime | None = None,
    started_by: str = "system",
    now: Clock = timezone.now,
) -> LoadRun:
    """A queued run; refused while another run of the same inquiry is queued or running."""
    if entity not in Entity.values:
        raise LoadError(f"Unknown entity '{entity}'; use one of {', '.join(Entity.values)}.")
    _refuse_while_running(profile, entity)
    moment = now()
    return LoadRun.objects.create(
        profile=profile, entity=entity, kind=kind, since=since, started_by=started_by,
        created_at=moment, updated_at=moment,
    )


def start(run: LoadRun) -> None:
    """Hand the run to a worker (the `default` queue) once the transaction commits."""
    from message_queue.tasks import run_load

    transaction.on_commit(lambda: run_load.delay(run.pk))


def start_loads(profile: Profile, entities: Iterable[str], *, started_by: str) -> list[LoadRun]:
    """Initial loads of these entities, queued for a worker."""
    with transaction.atomic():
        runs = [create_run(profile, entity, started_by=started_by) for entity in entities]
        for run in runs:
            start(run)
    return runs


def cancel(run: LoadRun) -> LoadRun:
    """A queued run is cancelled at once; a running one stops after the page it reads."""
    LoadRun.objects.filter(pk=run.pk, status=Status.QUEUED).update(
        status=Status.CANCELLED, finished_at=timezone.now(), updated_at=timezone.now()
    )
    LoadRun.objects.filter(pk=run.pk, status=Status.RUNNING).update(cancel_requested=True)
    run.refresh_from_db()
    return run


def resume(run: LoadRun, *, started_by: str = "") -> LoadRun:
    """A cancelled or failed run, queued again: it continues at `next_skip`."""
    with transaction.atomic():
        run = LoadRun.objects.select_for_update().get(pk=run.pk)
        if not run.resumable:
            raise LoadError(
                f"Run {run.pk} is {run.get_status_display().lower()}: only a cancelled or "
                "failed run can be resumed."
            )
        _refuse_while_running(run.profile, run.entity, other_than=run.pk)
        run.status = Status.QUEUED
        run.cancel_requested = False
        run.finished_at = None
        run.error = ""
        run.updated_at = timezone.now()
        if started_by and started_by not in run.started_by.split(", "):
            run.started_by = f"{run.started_by}, {started_by}" if run.started_by else started_by
        run.save(update_fields=["status", "cancel_requested", "finished_at", "error",
                                "updated_at", "started_by"])
        start(run)
    return run


# --- the worker's part -----------------------------------------------------------------------


def execute(
    run: LoadRun,
    *,
    client: AcumaticaClient | None = None,
    now: Clock = timezone.now,
    on_progress: ProgressCallback | None = None,
) -> LoadRun:
    """Read the run's inquiry into the queue; the outcome is recorded on the run (failures
    too: this never raises for Acumatica's or the data's sake)."""
    if not _take(run, now):
        run.refresh_from_db()
        return run
    profile = get_profile(run.profile.name)
    own_client = client is None
    try:
        if client is None:
            client = client_for(profile)
        _read(run, profile, client, now, on_progress)
    except (AcumaticaError, MalformedNotification, UnknownQuery, SecretDecryptionError,
            ValueError) as error:
        _finish(run, Status.FAILED, now, error=str(error))
    except Exception as error:
        logger.exception("Run %s of %s stopped", run.pk, profile)
        _finish(run, Status.FAILED, now, error=f"{type(error).__name__}: {error}")
    finally:
        if own_client and client is not None:
            client.close()
    if on_progress is not None:
        on_progress(run)
    return run


def _take(run: LoadRun, now: Clock) -> bool:
    moment = now()
    stale = moment - STALE_AFTER
    taken = LoadRun.objects.filter(
        Q(status=Status.QUEUED) | Q(status=Status.RUNNING, updated_at__lt=stale), pk=run.pk
    ).update(status=Status.RUNNING, resumed_at=moment, updated_at=moment, finished_at=None)
    if taken != 1:
        return False
    run.refresh_from_db()
    run.read_at_resume = run.read
    fields = ["read_at_resume"]
    if run.started_at is None:
        run.started_at = moment
        fields.append("started_at")
    run.save(update_fields=fields)
    return True


def _read(run: LoadRun, profile: Profile, client: AcumaticaClient, now: Clock,
          on_progress: ProgressCallback | None) -> None:
    settings = profile.acumatica_settings
    inquiry = inquiry_for(profile, run.entity)
    row_filter = None
    if run.since is not None:
        row_filter = modified_since_filter(LAST_MODIFIED_FIELD, run.since, settings.time_zone,
                                           settings.time_offset, odata=True)
    page_size, batch_size = settings.page_size, settings.batch_size
    skip = run.next_skip
    pages: list[tuple[int, list[dict]]] = []
    analyze_at = run.keys_changed + ANALYZE_AFTER_KEYS
    while True:
        if _cancel_requested(run, now):
            _store(run, profile, pages, skip, now)
            _finish(run, Status.CANCELLED, now)
            return
        rows = client.odata_gi(inquiry.name, filter=row_filter, orderby=inquiry.orderby,
                               select=inquiry.select, top=page_size, skip=skip)
        last = len(rows) < page_size
        if run.total is None:
            run.total = (skip + len(rows) if last else
                         count_rows(client, inquiry, row_filter, at_least=skip + len(rows)))
            run.save(update_fields=["total"])
        pages.append((skip, rows))
        skip += len(rows)
        if last or sum(len(page) for _, page in pages) >= batch_size:
            _store(run, profile, pages, skip, now)
            pages = []
            if run.keys_changed >= analyze_at:  # the processors drain while a load reads
                refresh_planner_statistics()
                analyze_at = run.keys_changed * 4
            if on_progress is not None:
                on_progress(run)
        if last:
            break
    _finish(run, Status.SUCCEEDED, now)


def _cancel_requested(run: LoadRun, now: Clock) -> bool:
    """Between pages: a sign of life (a run silent for STALE_AFTER counts as abandoned), and
    the cancel flag the screen sets."""
    LoadRun.objects.filter(pk=run.pk).update(updated_at=now())
    return LoadRun.objects.filter(pk=run.pk, cancel_requested=True).exists()


def count_rows(client: AcumaticaClient, inquiry: Inquiry, row_filter: str | None, *,
               at_least: int) -> int:
    """How many rows the inquiry answers, by `$top=1` probes: `$skip` doubling until a probe
    comes back empty, then halving the gap (about 2 log2(rows / page size) small calls)."""

    def row_at(index: int) -> bool:
        return bool(client.odata_gi(inquiry.name, filter=row_filter, select=inquiry.sku_field,
                                    top=1, skip=index))

    low, high = at_least, max(at_least * 2, 1)  # low ≤ rows < high once a probe is empty
    while row_at(high - 1):
        low, high = high, high * 2
    while high - low > 1:
        middle = (low + high) // 2
        if row_at(middle - 1):
            low = middle
        else:
            high = middle
    return low


def _store(run: LoadRun, profile: Profile, pages: list[tuple[int, list[dict]]], next_skip: int,
           now: Clock) -> None:
    """Store read pages and the run's progress in one transaction."""
    if not pages and next_skip == run.next_skip:
        return
    prefix = ID_PREFIXES[run.kind]
    result = PageResult()
    with transaction.atomic():
        for skip, rows in pages:
            result.add(store_page(profile, run.entity, rows, id_prefix=f"{prefix}-{run.pk}-{skip}"))
        run.read += result.rows
        run.keys_changed += result.keys_changed
        run.next_skip = next_skip
        run.updated_at = now()
        if result.malformed:
            run.error = _malformed_note(run.error, result.malformed)
        run.save(update_fields=["read", "keys_changed", "next_skip", "updated_at", "error"])


def _malformed_note(note: str, problems: list[str]) -> str:
    shown = "; ".join(problems[:MALFORMED_ROWS_SHOWN])
    hidden = len(problems) - MALFORMED_ROWS_SHOWN
    more = f" (and {hidden} more)" if hidden > 0 else ""
    text = f"Rows left out: {shown}{more}".rstrip(".") + "."
    return f"{note} {text}" if note else text


def _finish(run: LoadRun, status: str, now: Clock, *, error: str = "") -> None:
    moment = now()
    run.status = status
    run.finished_at = moment
    run.updated_at = moment
    if error:
        run.error = error[:4000]
    if status == Status.SUCCEEDED:
        run.total = run.read
    run.save(update_fields=["status", "finished_at", "updated_at", "error", "total"])
    if status == Status.SUCCEEDED and run.started_at is not None:
        advance_watermark(run)
    if run.keys_changed >= ANALYZE_AFTER_KEYS:
        refresh_planner_statistics()


def refresh_planner_statistics() -> None:
    """PostgreSQL plans the processors' claim with the table's statistics. Right after a big
    load they still describe an almost empty queue, and the claim's anti-join then walks every
    in-flight index entry per candidate (seconds per call on 20,000 messages) until autovacuum
    gets round to it. ANALYZE samples the tables now; it blocks no reader or writer."""
    if connection.vendor != "postgresql":
        return
    tables = ", ".join(model._meta.db_table for model in (Message, KeyState))
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {tables}")


def advance_watermark(run: LoadRun) -> None:
    """After a catch-up: the watermark moves to the moment its read began (never back).
    After a load: the first watermark, when there is none, so the next catch-up also reads
    what changed while the load read."""
    column = f"{run.entity}_watermark"
    settings = pull_settings(run.profile)
    if run.kind == Kind.CATCH_UP:
        condition = Q(**{f"{column}__isnull": True}) | Q(**{f"{column}__lt": run.started_at})
    else:
        condition = Q(**{f"{column}__isnull": True})
    PullSettings.objects.filter(condition, pk=settings.pk).update(**{column: run.started_at})


# --- pages into notifications ----------------------------------------------------------------


def store_page(profile: Profile, entity: str, rows: list[dict], *, id_prefix: str,
               batch_size: int | None = None) -> PageResult:
    """One page of an inquiry, as push notifications of at most *batch size* rows each."""
    settings = profile.acumatica_settings
    batch_size = batch_size or settings.batch_size
    query = inquiry_for(profile, entity).name
    result = PageResult(rows=len(rows))
    ticks = [row_ticks(row, settings.time_zone) for row in rows]
    known = [value for value in ticks if value is not None]
    # A page without LastModifiedDateTime (a GI that lacks the column) is as new as its read.
    page_ts = max(known) if known else datetime_to_ticks(timezone.now())
    for index, start in enumerate(range(0, len(rows), batch_size)):
        chunk = rows[start:start + batch_size]
        chunk_ticks = ticks[start:start + batch_size]
        usable, usable_ticks, problems = valid_rows(profile, entity, query, chunk, chunk_ticks)
        result.malformed += problems
        fresh = not_yet_applied(profile, entity, query, usable, usable_ticks)
        result.already_applied += len(usable) - len(fresh)
        if not fresh:
            continue
        notification = Notification(
            query=query,
            notification_id=f"{id_prefix}-{index}-{_digest(chunk)}",
            timestamp=page_ts,
            inserted=fresh,
            deleted=[],
            company_id=settings.tenant,
        )
        result.keys_changed += store_notification(profile, notification).keys_changed
    return result


def row_ticks(row: dict, time_zone: str) -> int | None:
    """A row's LastModifiedDateTime as .NET ticks (a value without offset is in the
    instance's time zone); None when the row has none."""
    value = row.get(LAST_MODIFIED_FIELD)
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return datetime_to_ticks(parse_acumatica_datetime(value, time_zone))
    except ValueError:
        return None


def _digest(rows: list[dict]) -> str:
    text = json.dumps(rows, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _check(profile: Profile, entity: str, query: str, rows: list[dict]) -> None:
    map_rows(profile, entity, Notification(query, "check", 0, rows, []))


def valid_rows(profile: Profile, entity: str, query: str, rows: list[dict],
               ticks: list[int | None]) -> tuple[list[dict], list[int | None], list[str]]:
    """The rows a push notification may carry; a malformed one (no SKU, a price that is not a
    number) is left out with the reason, instead of refusing the whole page."""
    try:
        _check(profile, entity, query, rows)
        return rows, ticks, []
    except MalformedNotification:
        pass
    kept, kept_ticks, problems = [], [], []
    for row, row_tick in zip(rows, ticks, strict=True):
        try:
            _check(profile, entity, query, [row])
        except MalformedNotification as error:
            problems.append(str(error).replace("Inserted[0]", _row_name(profile, entity, row)))
            continue
        kept.append(row)
        kept_ticks.append(row_tick)
    return kept, kept_ticks, problems


def _row_name(profile: Profile, entity: str, row: dict) -> str:
    sku_field = profile.price_sku_field if entity == Entity.PRICE else profile.inventory_sku_field
    return f"row {str(row.get(sku_field) or '?').strip()!r}"


def not_yet_applied(profile: Profile, entity: str, query: str, rows: list[dict],
                    ticks: list[int | None]) -> list[dict]:
    """The rows whose version is newer than what their key (stock: their warehouse) has."""
    if not rows:
        return []
    mapped = map_rows(profile, entity, Notification(query, "check", 0, rows, []))
    if entity == Entity.PRICE:
        key_of = {change.sku: change.key for change in mapped.changes}
    else:
        key_of = {
            (change.sku, warehouse): change.key
            for change in mapped.changes
            for warehouse in change.warehouse_quantities
        }
    states = {
        key: (source_ts, warehouse_timestamps)
        for key, source_ts, warehouse_timestamps in KeyState.objects.filter(
            profile=profile, entity=entity, key__in=sorted(set(key_of.values()))
        ).values_list("key", "source_ts", "warehouse_timestamps")
    }
    fresh = []
    for row, row_tick in zip(rows, ticks, strict=True):
        if row_tick is not None and row_tick <= _applied_ts(profile, entity, row, key_of, states):
            continue
        fresh.append(row)
    return fresh


def _applied_ts(profile: Profile, entity: str, row: dict, key_of: dict, states: dict) -> int:
    if entity == Entity.PRICE:
        state = states.get(key_of.get(str(row.get(profile.price_sku_field)).strip()))
        return state[0] if state else -1
    sku = str(row.get(profile.inventory_sku_field)).strip()
    warehouse = str(row.get(profile.inventory_warehouse_field)).strip()
    state = states.get(key_of.get((sku, warehouse)))
    return state[1].get(warehouse, -1) if state else -1


# --- catch-up --------------------------------------------------------------------------------


def catch_up(
    profile: Profile,
    *,
    entities: Iterable[str] | None = None,
    since: datetime | None = None,
    started_by: str = "schedule",
    now: Clock = timezone.now,
    client: AcumaticaClient | None = None,
) -> list[LoadRun]:
    """Read, for each entity, the rows changed after its watermark (or `since`, when that is
    earlier) less the time offset; the watermark moves only when every row is stored. No
    watermark and no `since`: every row (the first catch-up of a profile never loaded)."""
    settings = pull_settings(profile)
    runs: list[LoadRun] = []
    errors: list[str] = []
    for entity in entities or Entity.values:
        watermark = settings.watermark(entity)
        moment = watermark if since is None else min(since, watermark or since)
        try:
            run = create_run(profile, entity, kind=Kind.CATCH_UP, since=moment,
                             started_by=started_by, now=now)
        except LoadError as error:
            errors.append(str(error))
            continue
        runs.append(execute(run, client=client, now=now))
        if runs[-1].status == Status.FAILED:
            errors.append(f"{runs[-1].get_entity_display()}: {runs[-1].error}")
    settings.last_error = " ".join(errors)[:4000]
    settings.save(update_fields=["last_error"])
    return runs


def catch_up_since(
    profile: Profile,
    moment: datetime,
    *,
    started_by: str = "system",
    now: Clock = timezone.now,
    client: AcumaticaClient | None = None,
) -> list[LoadRun]:
    """Every change since `moment` (e.g. the Stop, for Initialize afterwards), whatever the
    tracking setting, read now in this process."""
    return catch_up(profile, since=moment, started_by=started_by, now=now, client=client)


def queue_catch_up_since(profile: Profile, moment: datetime | None, *,
                         started_by: str = "system") -> list[LoadRun]:
    """`catch_up_since` for a worker: queued runs (one per entity, since `moment` or the
    watermark, the earlier), started after commit. `moment=None`: since the watermark (the
    screen's *Catch up now*). An entity already being read is left out (logged)."""
    settings = pull_settings(profile)
    runs = []
    with transaction.atomic():
        for entity in Entity.values:
            watermark = settings.watermark(entity)
            since = watermark if moment is None else min(moment, watermark or moment)
            try:
                run = create_run(profile, entity, kind=Kind.CATCH_UP, since=since,
                                 started_by=started_by)
            except LoadError as error:
                logger.warning("Catch-up of %s not queued: %s", profile, error)
                continue
            start(run)
            runs.append(run)
    return runs


def due_for_catch_up(settings: PullSettings, moment: datetime) -> bool:
    if settings.tracking != PullSettings.Tracking.DATE:
        return False
    interval = timedelta(minutes=settings.interval_minutes)
    return settings.last_run_at is None or settings.last_run_at + interval <= moment


def run_due_catch_ups(*, now: Clock = timezone.now,
                      client_factory: Callable[[Profile], AcumaticaClient] | None = None
                      ) -> list[LoadRun]:
    """Beat's once-a-minute look: each active or paused profile with an Acumatica instance
    whose catch-up interval has passed is claimed (a conditional update of its last run, so
    two workers never both run it) and caught up."""
    runs: list[LoadRun] = []
    profiles = Profile.objects.filter(state__in=CATCH_UP_STATES).exclude(
        acumatica_settings__instance_url=""  # push notifications only: nothing to read from
    )
    for profile in profiles.order_by("name"):
        settings = pull_settings(profile)
        moment = now()
        if not due_for_catch_up(settings, moment):
            continue
        claimed = PullSettings.objects.filter(
            pk=settings.pk, last_run_at=settings.last_run_at
        ).update(last_run_at=moment)
        if claimed != 1:
            continue
        client = client_factory(get_profile(profile.name)) if client_factory else None
        try:
            runs += catch_up(get_profile(profile.name), now=now, client=client)
        finally:
            if client is not None:
                client.close()
    return runs
