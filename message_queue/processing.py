"""Sending queued Pricing and Inventory to Magento: the rules of DESIGN.md section 5.

A *run* (one Celery task, started by beat every minute per profile and entity) holds one of
the entity's *senders* slots and repeats *passes*: it works, then while the time since it
started is below the check process time it sleeps the process sleep time and looks again.

A *pass*:
1. gives expired leases back (pending, superseded or failed);
2. counts the pending messages it can claim (up to threshold + 1); at most the threshold it
   sends them one request per record, above it in requests of batch count records, the last
   request taking the remainder (while the outage guard is tripped: one probe call);
3. claims each request's records with one statement (SKIP LOCKED on PostgreSQL), sends them,
   writes one Attempt per HTTP call and sets the statuses in bulk. The calls are pipelined:
   while one is in flight on the pass's sender thread, the pass claims the next request's
   records and settles the one before (`send_in_requests`).
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import repeat

from django.db import (
    DatabaseError,
    IntegrityError,
    close_old_connections,
    connection,
    connections,
    transaction,
)
from django.db.models import Exists, F, OuterRef
from django.utils import timezone

from connector.magento import (
    CallResult,
    MagentoClient,
    MagentoConnectionError,
    MagentoDataError,
    MagentoError,
    MagentoInputLimitError,
    MagentoTimeout,
    MagentoUnknownSku,
)
from message_queue.models import (
    Attempt,
    AttemptMessage,
    Entity,
    KeyState,
    Message,
    OutageGuard,
    SenderSlot,
    Status,
    json_from_cursor,
)
from message_queue.stats import count_call, note_backlog
from setup_params.models import Profile

logger = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 300
LEASE_MARGIN_SECONDS = 60
SENDER_SLOT_MARGIN_SECONDS = 30


@dataclass
class PassReport:
    calls: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    retrying: int = 0
    released: int = 0
    recovered: int = 0
    left: int = 0
    outage: str = ""

    def add(self, other: PassReport) -> None:
        for name in ("calls", "sent", "failed", "skipped", "retrying", "released", "recovered"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.left = other.left
        self.outage = other.outage

    def summary(self) -> str:
        text = (
            f"{self.calls} calls: {self.sent} sent, {self.failed} failed, {self.skipped} skipped, "
            f"{self.retrying} to retry, {self.left} left"
        )
        return text + (f"; sending paused: {self.outage}" if self.outage else "")


@dataclass
class ClaimedMessage:
    id: int
    key: str
    sku: str
    payload: dict
    attempts: int


@dataclass
class Outcome:
    """What one HTTP call meant for each of its messages."""

    sent: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)
    skipped: dict[int, str] = field(default_factory=dict)
    retry: list[int] = field(default_factory=list)
    release: list[int] = field(default_factory=list)
    # No answer (a timeout, a dropped connection): Magento may still save the request later.
    unanswered: bool = False
    status_code: int | None = None
    error: str = ""
    endpoint: str = ""
    duration_ms: float = 0.0


class OutageTripped(Exception):
    pass


# --- the run: check process time, process sleep time, sender slots --------------------------


def run_processor(
    profile_name: str,
    entity: str,
    *,
    client_factory: Callable[[Profile], MagentoClient] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> PassReport | None:
    """One beat-started run. None when every sender slot of this entity is taken."""
    profile = Profile.objects.select_related("queue_settings").get(name=profile_name)
    settings = profile.queue_settings
    holder = acquire_sender_slot(profile, entity, settings.senders,
                                 hold_seconds=settings.check_process_time)
    if holder is None:
        return None
    report = PassReport()
    started = time.monotonic()
    check_process_time = settings.check_process_time
    sleep_time = settings.process_sleep_time
    try:
        while True:
            close_old_connections()
            try:
                profile = load_profile(profile_name)
                check_process_time = profile.queue_settings.check_process_time
                sleep_time = profile.queue_settings.process_sleep_time
                report.add(run_pass(profile, entity, client_factory=client_factory))
            except DatabaseError:
                # A dropped connection costs this pass, not the run (DESIGN.md section 5).
                logger.exception("%s %s: the database failed during a pass; trying again",
                                 profile_name, entity)
                connections.close_all()
            if time.monotonic() - started >= check_process_time:
                break
            sleep(sleep_time)
    finally:
        try:
            release_sender_slot(holder)
        except DatabaseError:
            logger.warning("Could not release the sender slot; it expires by itself")
    return report


def load_profile(name: str) -> Profile:
    return Profile.objects.select_related("magento_settings", "queue_settings").get(name=name)


def acquire_sender_slot(profile: Profile, entity: str, senders: int, *, hold_seconds: int):
    """Take a free slot (one of *senders*); a slot whose holder died expires by itself."""
    now = timezone.now()
    expires = now + timedelta(seconds=hold_seconds + SENDER_SLOT_MARGIN_SECONDS)
    holder = uuid.uuid4().hex
    for number in range(senders):
        SenderSlot.objects.get_or_create(profile=profile, entity=entity, number=number)
        taken = SenderSlot.objects.filter(
            profile=profile, entity=entity, number=number, expires_at__lt=now
        ).update(holder=holder, expires_at=expires)
        if taken == 1:
            return holder
    return None


def release_sender_slot(holder: str) -> None:
    SenderSlot.objects.filter(holder=holder).update(expires_at=timezone.now() - timedelta(1))


# --- one pass --------------------------------------------------------------------------------


def run_pass(
    profile: Profile,
    entity: str,
    *,
    client_factory: Callable[[Profile], MagentoClient] | None = None,
) -> PassReport:
    report = PassReport()
    if profile.state != Profile.State.ACTIVE:
        report.left = count_pending(profile, entity)
        return report
    settings = profile.queue_settings
    report.recovered = recover_expired_leases(profile, entity, settings.retry_count)
    guard, _ = OutageGuard.objects.get_or_create(profile=profile, entity=entity)
    # Only what was due when the pass began: a message put back during it waits for the next.
    due_by = timezone.now()
    due = count_claimable(profile, entity, limit=settings.threshold_count + 1, due_by=due_by)
    if due == 0:
        report.outage = guard.last_error if guard.tripped else ""
        return report
    factory = client_factory or magento_client_for_profile
    client = factory(profile)
    try:
        if guard.tripped:
            send_in_requests(profile, entity, client, guard, report, sizes=[1], due_by=due_by)
            if guard.tripped:
                report.left = count_pending(profile, entity)
                report.outage = guard.last_error
                return report
            due = count_claimable(profile, entity, limit=settings.threshold_count + 1,
                                  due_by=due_by)
        if due <= settings.threshold_count or not sends_in_batches(profile, entity):
            sizes: Iterable[int] = [1] * due
        else:
            sizes = repeat(settings.batch_count)
        send_in_requests(profile, entity, client, guard, report, sizes=sizes, due_by=due_by)
    finally:
        client.close()
    report.left = count_pending(profile, entity)
    note_backlog(profile, entity, report.left)
    report.outage = guard.last_error if guard.tripped else ""
    return report


def send_in_requests(profile, entity, client, guard, report, *, sizes: Iterable[int],
                     due_by: datetime) -> None:
    """Claim and send one request of each size in turn, until nothing is left to claim.

    Pipelined: while one request is in flight (on the sender thread, which only speaks HTTP),
    this thread claims the next one and settles the one before, so the bookkeeping costs no
    time of its own while Magento answers. Claiming ahead is safe for the order per key: the
    claim skips every key that has a message in flight. After a failed call nothing more
    goes out until its consequences (a retry, the outage guard, a split) are settled.
    """
    sizes = iter(sizes)
    lease = lease_seconds(profile)
    position = None

    def claim_next() -> list[ClaimedMessage]:
        nonlocal position
        size = next(sizes, None)
        if size is None:
            return []
        claimed = claim_from(profile, entity, size, lease_seconds=lease, due_by=due_by,
                             after=position)
        position = claimed.position
        return claimed.messages

    current = claim_next()
    if not current:
        return
    with MagentoSender(client, entity, use_msi=uses_msi(profile)) as sender:
        in_flight = sender.send(request_records(profile, entity, current))
        ahead = claim_next()
        while current:
            ahead_records = request_records(profile, entity, ahead) if ahead else None
            answer = in_flight.result()
            if answer.ok:
                in_flight = sender.send(ahead_records) if ahead else None
                with transaction.atomic():
                    outcome, _ = interpret_answer(profile, entity, current, guard, answer)
                    report.calls += 1
                    settle(profile, entity, current, outcome, report)
                    after = claim_next() if ahead else []
            else:
                try:
                    send_claimed(profile, entity, client, current, guard, report, answer=answer)
                except OutageTripped:
                    if ahead:
                        release_unsent(profile, entity, ahead, report)
                    return
                in_flight = sender.send(ahead_records) if ahead else None
                after = claim_next() if ahead else []
            current, ahead = ahead, after


class MagentoSender:
    """The one thread that makes a pass's HTTP calls: no database work happens on it (a
    connection there would not see the pass's transaction, nor a test's)."""

    def __init__(self, client: MagentoClient, entity: str, *, use_msi: bool):
        self.client = client
        self.entity = entity
        self.use_msi = use_msi
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="magento-sender")

    def __enter__(self) -> MagentoSender:
        return self

    def __exit__(self, *exc_info) -> None:
        self.executor.shutdown(wait=True)

    def send(self, records: list[dict]) -> Future[Answer]:
        return self.executor.submit(call_for_records, self.client, self.entity, records,
                                    use_msi=self.use_msi)


@dataclass
class Answer:
    """Magento's answer to one call: a result, or the error the client raised."""

    result: CallResult | None = None
    error: MagentoError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def call_for_records(client: MagentoClient, entity: str, records: list[dict], *,
                     use_msi: bool) -> Answer:
    """The HTTP call alone (any thread): no database, no Django."""
    try:
        if entity == Entity.PRICE:
            return Answer(result=client.post_base_prices(records))
        if use_msi:
            return Answer(result=client.post_source_items(records))
        record = records[0]
        return Answer(result=client.put_stock_item(record["sku"], record["quantity"],
                                                   bool(record["status"])))
    except MagentoError as error:
        return Answer(error=error)


def release_unsent(profile, entity, group: list[ClaimedMessage], report: PassReport) -> None:
    settle(profile, entity, group, Outcome(release=[m.id for m in group]), report, called=False)


def sends_in_batches(profile: Profile, entity: str) -> bool:
    """Legacy stock items have no list endpoint: one call per record, whatever the count."""
    return entity == Entity.PRICE or uses_msi(profile)


def uses_msi(profile: Profile) -> bool:
    return profile.magento_settings.use_msi


def lease_seconds(profile: Profile) -> int:
    """Long enough for a batch's calls (splits included) and for those of the batch in
    flight when it was claimed ahead."""
    batch = max(profile.queue_settings.batch_count, 2)
    calls_at_most = 2 + math.ceil(math.log2(batch))
    return 2 * profile.magento_settings.timeout * calls_at_most + LEASE_MARGIN_SECONDS


def magento_client_for_profile(profile: Profile) -> MagentoClient:
    magento = profile.magento_settings
    return MagentoClient(
        magento.magento_url,
        magento.token,
        store_code=magento.store_code,
        timeout=magento.timeout,
        verify_tls=magento.verify_tls,
    )


def count_pending(profile: Profile, entity: str) -> int:
    return Message.objects.filter(profile=profile, entity=entity, status=Status.PENDING).count()


def _claimable_sql(select: str, limit_clause: str, *, after: bool = False) -> str:
    """Pending, due, and no message of the same key in flight. Parameters: profile, entity,
    due by, (with `after`: the position claimed last, its next attempt at and id), profile,
    entity.

    The keys in flight are one small set (senders × batch count), read once per statement
    (a hashed subplan on PostgreSQL); a correlated NOT EXISTS was planned as a scan of the
    in-flight index per candidate row, which slowed a long drain down quadratically.
    """
    table = Message._meta.db_table
    return (
        f"SELECT {select} FROM {table} m "
        "WHERE m.profile_id = %s AND m.entity = %s AND m.status = 'pending' "
        "AND m.next_attempt_at <= %s "
        + ("AND (m.next_attempt_at, m.id) > (%s, %s) " if after else "")
        + f"AND m.key NOT IN (SELECT p.key FROM {table} p WHERE p.profile_id = %s "
        "AND p.entity = %s AND p.status = 'processing') "
        f"ORDER BY m.next_attempt_at, m.id {limit_clause}"
    )


def count_claimable(profile: Profile, entity: str, *, limit: int,
                    due_by: datetime | None = None) -> int:
    sql = f"SELECT COUNT(*) FROM ({_claimable_sql('m.id', 'LIMIT %s')}) due"
    with connection.cursor() as cursor:
        cursor.execute(
            sql, [profile.pk, entity, due_by or timezone.now(), profile.pk, entity, limit]
        )
        return cursor.fetchone()[0]


@dataclass
class Claim:
    """Messages claimed by one statement, and where the next claim of the pass starts."""

    messages: list[ClaimedMessage]
    position: tuple | None


def claim(profile: Profile, entity: str, size: int, *, lease_seconds: int,
          due_by: datetime | None = None) -> list[ClaimedMessage]:
    """Mark up to *size* due messages `processing` under a lease, in one statement."""
    return claim_from(profile, entity, size, lease_seconds=lease_seconds, due_by=due_by).messages


def claim_from(profile: Profile, entity: str, size: int, *, lease_seconds: int,
               due_by: datetime | None = None, after: tuple | None = None) -> Claim:
    """Mark up to *size* due messages `processing` under a lease, in one statement; with
    `after`, only those past the position a claim of the same pass answered.

    PostgreSQL skips rows another sender has locked; SQLite has one writer at a time, so the
    same conditional UPDATE is enough there. The position lets a long drain's claims start
    where the last one ended instead of wading, every time, through the index entries of the
    messages already claimed (dead until vacuum comes by): on a million-message backlog a
    claim otherwise costs more with every batch sent. A message passed over (its key was in
    flight, another sender held it) waits for the next pass.
    """
    now = timezone.now()
    lock = "FOR UPDATE SKIP LOCKED" if connection.vendor == "postgresql" else ""
    table = Message._meta.db_table
    sql = (
        f"UPDATE {table} SET status = 'processing', lease_until = %s, "
        "attempts = attempts + 1, updated_at = %s "
        f"WHERE id IN ({_claimable_sql('m.id', 'LIMIT %s ' + lock, after=after is not None)}) "
        "RETURNING id, key, sku, payload, attempts, next_attempt_at"
    )
    parameters = [now + timedelta(seconds=lease_seconds), now, profile.pk, entity, due_by or now,
                  *(after or ()), profile.pk, entity, size]
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        cursor.execute(sql, parameters)
        rows = cursor.fetchall()
    claimed = [
        ClaimedMessage(id=row[0], key=row[1], sku=row[2], payload=json_from_cursor(row[3]),
                       attempts=row[4])
        for row in rows
    ]
    position = None
    if connection.vendor == "postgresql":  # SQLite deletes an index entry on update
        position = max(((row[5], row[0]) for row in rows), default=after)
    return Claim(sorted(claimed, key=lambda message: message.id), position)


# --- sending ---------------------------------------------------------------------------------


def send_claimed(
    profile: Profile,
    entity: str,
    client: MagentoClient,
    claimed: list[ClaimedMessage],
    guard: OutageGuard,
    report: PassReport,
    *,
    answer: Answer | None = None,
) -> None:
    """Send claimed messages (or settle the answer already had for them), one call at a time;
    split on the input limit or to isolate a bad source item."""
    pending = [claimed]
    while pending:
        group = pending.pop(0)
        if answer is None:
            answer = call_for_records(client, entity, request_records(profile, entity, group),
                                      use_msi=uses_msi(profile))
        outcome, split = interpret_answer(profile, entity, group, guard, answer)
        answer = None
        report.calls += 1
        if split:
            count_call(profile, entity)
            pending = split + pending
            continue
        settle(profile, entity, group, outcome, report)
        if guard.tripped and (outcome.retry or outcome.release):
            for rest in pending:
                release_unsent(profile, entity, rest, report)
            raise OutageTripped


def request_records(profile: Profile, entity: str, group: list[ClaimedMessage]) -> list[dict]:
    if entity == Entity.PRICE:
        return [message.payload for message in group]
    quantities = current_source_quantities(profile, [message.key for message in group])
    records = []
    for message in group:
        quantity = quantities.get(message.key, 0.0)
        records.append(
            {
                "sku": message.sku,
                "source_code": message.payload["source_code"],
                "quantity": quantity,
                "status": 1 if quantity > 0 else 0,
            }
        )
    return records


def current_source_quantities(profile: Profile, keys: list[str]) -> dict[str, float]:
    """A source's quantity: the sum of its warehouses' last known quantities (key state)."""
    if connection.vendor == "postgresql":
        states = key_states_by_exact_key(profile, keys)
    else:
        states = KeyState.objects.filter(
            profile=profile, entity=Entity.INVENTORY, key__in=keys
        ).values_list("key", "warehouse_quantities")
    return {key: float(sum(json_from_cursor(quantities).values())) for key, quantities in states
            if quantities is not None}


def key_states_by_exact_key(profile: Profile, keys: list[str]) -> list[tuple]:
    """One index look-up per key, whatever the planner believes of the table's size: with
    `key = ANY(…)`, a key-state table not yet analyzed (a first big load) was read whole for
    every batch."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT k.key, (SELECT s.warehouse_quantities FROM {KeyState._meta.db_table} s "
            "WHERE s.profile_id = %s AND s.entity = %s AND s.key = k.key) "
            "FROM unnest(%s::text[]) AS k(key)",
            [profile.pk, Entity.INVENTORY, keys],
        )
        return cursor.fetchall()


def interpret_answer(
    profile: Profile,
    entity: str,
    group: list[ClaimedMessage],
    guard: OutageGuard,
    answer: Answer,
) -> tuple[Outcome, list[list[ClaimedMessage]]]:
    """What one call's answer means for its messages (or how to split and send again); its
    Attempt row; the outage guard."""
    outcome = Outcome()
    split: list[list[ClaimedMessage]] = []
    result = answer.result
    try:
        if answer.error is not None:
            raise answer.error  # the client's error, as if the call had been made here
    except MagentoInputLimitError as error:
        size = max(1, error.max_items or len(group) // 2)
        split = [group[index:index + size] for index in range(0, len(group), size)]
        record_attempt(profile, entity, group, error.endpoint, error.status_code,
                       error.duration_ms, ok=False, error=str(error))
        return outcome, split
    except MagentoUnknownSku as error:
        outcome.skipped = {message.id: str(error) for message in group}
        _describe(outcome, error)
    except MagentoDataError as error:
        if len(group) > 1 and entity == Entity.INVENTORY:
            half = len(group) // 2
            split = [group[:half], group[half:]]
        else:
            outcome.failed = {message.id: str(error) for message in group}
        _describe(outcome, error)
    except MagentoError as error:
        _describe(outcome, error)
        outcome.unanswered = isinstance(error, MagentoTimeout | MagentoConnectionError)
        probing = guard.tripped
        if error.trips_outage_guard:
            trip_outage_guard(guard, str(error))
        else:
            note_failed_call(profile, guard, str(error))
        if error.trips_outage_guard or probing:
            outcome.release = [message.id for message in group]
        else:
            outcome.retry = [message.id for message in group]
    else:
        outcome.status_code = result.status_code
        apply_row_failures(group, result, outcome)
        reset_outage_guard(guard)
    if result is not None:
        record_attempt(profile, entity, group, result.endpoint, result.status_code,
                       result.duration_ms, ok=True, error=outcome.error)
    else:
        record_attempt(profile, entity, group, outcome.endpoint, outcome.status_code,
                       outcome.duration_ms, ok=False, error=outcome.error)
    return outcome, split


def _describe(outcome: Outcome, error: MagentoError) -> None:
    outcome.status_code = error.status_code
    outcome.error = str(error)
    outcome.endpoint = error.endpoint
    outcome.duration_ms = error.duration_ms


def apply_row_failures(group: list[ClaimedMessage], result: CallResult, outcome: Outcome) -> None:
    """Base prices: only the rows Magento names fail (or are skipped); the rest are sent."""
    by_sku: dict[str, list] = {}
    unmatched = []
    for failure in result.failures:
        if not failure.skus:
            unmatched.append(failure)
        for sku in failure.skus:
            by_sku.setdefault(sku.lower(), []).append(failure)
    if unmatched and len(group) == 1:
        by_sku.setdefault(group[0].sku.lower(), []).extend(unmatched)
    for message in group:
        failures = by_sku.get(message.sku.lower())
        if not failures:
            outcome.sent.append(message.id)
            continue
        text = " ".join(dict.fromkeys(failure.message for failure in failures))
        if all(failure.unknown_sku for failure in failures):
            outcome.skipped[message.id] = text
        else:
            outcome.failed[message.id] = text
    if result.failures:
        outcome.error = "; ".join(failure.message for failure in result.failures)


def record_attempt(profile, entity, group, endpoint, status_code, duration_ms, *, ok, error):
    values = {
        "profile_id": profile.pk,
        "entity": entity,
        "endpoint": endpoint or "",
        "record_count": len(group),
        "status_code": status_code,
        "duration_ms": duration_ms or 0,
        "ok": ok,
        "error": error[:4000],
        "created_at": timezone.now(),
    }
    message_ids = [message.id for message in group]
    if connection.vendor == "postgresql":
        insert_attempt_with_links(values, message_ids)
    else:
        attempt = Attempt.objects.create(**values)
        AttemptMessage.objects.bulk_create(
            [AttemptMessage(attempt_id=attempt.pk, message_id=message_id)
             for message_id in message_ids]
        )


def insert_attempt_with_links(values: dict, message_ids: list[int]) -> None:
    """The Attempt and its rows in the link table in one statement (the ORM's create and
    bulk_create cost more than the HTTP call on a 100-record batch)."""
    attempts = Attempt._meta.db_table
    links = AttemptMessage._meta.db_table
    columns = ", ".join(values)
    placeholders = ", ".join(["%s"] * len(values))
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH attempt AS (INSERT INTO {attempts} ({columns}) VALUES ({placeholders}) "
            f"RETURNING id) INSERT INTO {links} (attempt_id, message_id) "
            "SELECT attempt.id, unnest(%s::bigint[]) FROM attempt",
            [*values.values(), message_ids],
        )


# --- statuses after a call -------------------------------------------------------------------


def settle(profile, entity, group, outcome: Outcome, report: PassReport, *, called=True):
    """Statuses after a call, in bulk; `called` is False for messages released unsent."""
    now = timezone.now()
    settings = profile.queue_settings
    messages = Message.objects.filter(status=Status.PROCESSING)
    used_up = 0
    with transaction.atomic(savepoint=False):
        if outcome.sent:
            mark_sent(outcome.sent, now, outcome.status_code)
        for status, errors in ((Status.FAILED, outcome.failed), (Status.SKIPPED, outcome.skipped)):
            for text, ids in _group_by_text(errors).items():
                messages.filter(id__in=ids).update(
                    status=status, failed_at=now, lease_until=None, updated_at=now,
                    last_error=text, last_http_status=outcome.status_code,
                )
        if outcome.retry:
            retry = messages.filter(id__in=outcome.retry)
            used_up = retry.filter(attempts__gte=settings.retry_count).update(
                status=Status.FAILED, failed_at=now, lease_until=None, updated_at=now,
                last_error=outcome.error, last_http_status=outcome.status_code,
            )
            report.failed += used_up
            report.retrying += back_to_pending(
                retry, now, outcome, settings.process_sleep_time, refund=False,
                hold_until=unanswered_hold(profile, outcome, now),
            )
        if outcome.release:
            report.released += back_to_pending(
                messages.filter(id__in=outcome.release), now, outcome, 0, refund=True,
                hold_until=unanswered_hold(profile, outcome, now),
            )
        if called:
            count_call(
                profile, entity, sent=len(outcome.sent), failed=len(outcome.failed) + used_up,
                skipped=len(outcome.skipped), call_failed=bool(outcome.retry or outcome.release),
            )
    report.sent += len(outcome.sent)
    report.failed += len(outcome.failed)
    report.skipped += len(outcome.skipped)


def mark_sent(message_ids: list[int], now: datetime, status_code: int | None) -> None:
    """The hot path of every pass: one statement, its ids one array parameter on PostgreSQL."""
    if connection.vendor != "postgresql":
        Message.objects.filter(status=Status.PROCESSING, id__in=message_ids).update(
            status=Status.SENT, sent_at=now, lease_until=None, updated_at=now,
            last_error="", last_http_status=status_code,
        )
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Message._meta.db_table} SET status = 'sent', sent_at = %s, "
            "lease_until = NULL, updated_at = %s, last_error = '', last_http_status = %s "
            "WHERE status = 'processing' AND id = ANY(%s::bigint[])",
            [now, now, status_code, message_ids],
        )


def _group_by_text(errors: dict[int, str]) -> dict[str, list[int]]:
    grouped: dict[str, list[int]] = {}
    for message_id, text in errors.items():
        grouped.setdefault(text[:4000], []).append(message_id)
    return grouped


def unanswered_hold(profile: Profile, outcome: Outcome, now):
    """After a call that got no answer, its keys wait twice the timeout before anything is
    sent for them: a late save of the old value must not land after a newer one."""
    if not outcome.unanswered:
        return None
    return now + timedelta(seconds=2 * profile.magento_settings.timeout)


def back_to_pending(queryset, now, outcome: Outcome, sleep_seconds: int, *, refund: bool,
                    hold_until=None) -> int:
    """Pending again (a newer pending row for the key supersedes it instead).

    `refund` gives the attempt back: a configuration error or a probe during an outage is not
    the message's fault.
    """
    newer_pending = Message.objects.filter(
        profile_id=OuterRef("profile_id"), entity=OuterRef("entity"), key=OuterRef("key"),
        status=Status.PENDING,
    )
    error_fields = {"last_error": outcome.error, "last_http_status": outcome.status_code}
    for _ in range(3):
        try:
            with transaction.atomic():
                if hold_until is not None:  # newer values of these keys wait too
                    Message.objects.filter(
                        Exists(queryset.filter(profile_id=OuterRef("profile_id"),
                                               entity=OuterRef("entity"), key=OuterRef("key"))),
                        status=Status.PENDING, next_attempt_at__lt=hold_until,
                    ).update(next_attempt_at=hold_until)
                queryset.filter(Exists(newer_pending)).update(
                    status=Status.SUPERSEDED, lease_until=None, updated_at=now, **error_fields
                )
                rows = list(queryset.values_list("id", "attempts"))
                for attempts, ids in _ids_by_attempts(rows).items():
                    used = attempts - 1 if refund else attempts
                    due = now + backoff(used, sleep_seconds)
                    Message.objects.filter(id__in=ids).update(
                        status=Status.PENDING,
                        lease_until=None,
                        attempts=used,
                        next_attempt_at=max(due, hold_until) if hold_until else due,
                        updated_at=now,
                        **error_fields,
                    )
                return len(rows)
        except IntegrityError:
            logger.info("A newer change arrived while retrying; looking again")
    return 0


def _ids_by_attempts(rows) -> dict[int, list[int]]:
    grouped: dict[int, list[int]] = {}
    for message_id, attempts in rows:
        grouped.setdefault(attempts, []).append(message_id)
    return grouped


def backoff(attempts_used: int, sleep_seconds: int) -> timedelta:
    """The next pass after the first failure, then doubling, capped."""
    if attempts_used <= 1 or sleep_seconds <= 0:
        return timedelta(0)
    return timedelta(seconds=min(sleep_seconds * 2 ** (attempts_used - 1), MAX_BACKOFF_SECONDS))


def recover_expired_leases(profile: Profile, entity: str, retry_count: int) -> int:
    """A worker died mid-send: its messages go back (attempt counted) after the lease."""
    now = timezone.now()
    expired = Message.objects.filter(
        profile=profile, entity=entity, status=Status.PROCESSING, lease_until__lt=now
    )
    if not expired.exists():
        return 0
    text = "The worker sending this message stopped before Magento answered."
    with transaction.atomic():
        failed = expired.filter(attempts__gte=retry_count).update(
            status=Status.FAILED, failed_at=now, lease_until=None, updated_at=now,
            last_error=text + " Retries used up.",
        )
        recovered = back_to_pending(expired, now, Outcome(error=text), 0, refund=False)
    return failed + recovered


# --- the outage guard ------------------------------------------------------------------------


def trip_outage_guard(guard: OutageGuard, error: str) -> None:
    now = timezone.now()
    if not guard.tripped:
        guard.tripped_at = now
        logger.warning("Outage guard tripped for %s %s: %s", guard.profile_id, guard.entity, error)
    guard.tripped = True
    guard.last_error = error
    guard.updated_at = now
    guard.save(update_fields=["tripped", "tripped_at", "last_error", "updated_at"])


def note_failed_call(profile: Profile, guard: OutageGuard, error: str) -> None:
    OutageGuard.objects.filter(pk=guard.pk).update(
        consecutive_failures=F("consecutive_failures") + 1
    )
    guard.refresh_from_db(fields=["consecutive_failures"])
    if guard.consecutive_failures >= profile.outage_threshold:
        trip_outage_guard(guard, f"{guard.consecutive_failures} calls in a row failed: {error}")
    else:
        guard.last_error = error
        guard.save(update_fields=["last_error"])


def reset_outage_guard(guard: OutageGuard) -> None:
    if guard.tripped:
        logger.info("Magento answers again for %s %s: sending resumes",
                    guard.profile_id, guard.entity)
    if guard.tripped or guard.consecutive_failures:
        guard.tripped = False
        guard.consecutive_failures = 0
        guard.updated_at = timezone.now()
        guard.save(update_fields=["tripped", "consecutive_failures", "updated_at"])
