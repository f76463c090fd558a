"""Retention (issue 7, security 5): finished messages and their attempts, received push
notification ids and old hourly statistics are deleted after the retention, in batches;
whatever an operator may still act on stays."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.db import DatabaseError, connection
from django.db.models import QuerySet
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from connector import tasks
from connector.retention import purge_old_rows
from message_queue.models import Attempt, HourlyStats, Message, ReceivedNotification, Status
from setup_params.models import get_profile
from tests.helpers import PROJECT_DIR, clean_environment
from tests.message_queue.queue_rows import make_attempt, make_message

pytestmark = pytest.mark.django_db

DONE = [Status.SENT, Status.SUPERSEDED, Status.DISMISSED]
KEPT = [Status.FAILED, Status.SKIPPED, Status.PENDING, Status.PROCESSING]


@pytest.fixture
def profile():
    return get_profile()


def days_ago(days: float):
    return timezone.now() - timedelta(days=days)


def old_message(profile, status: str, days: float = 15, **fields) -> Message:
    at = days_ago(days)
    return make_message(profile, status=status, created_at=at, updated_at=at, **fields)


def old_attempt(profile, messages, days: float = 15) -> Attempt:
    return make_attempt(profile, messages, created_at=days_ago(days))


def exists(row) -> bool:
    return type(row).objects.filter(pk=row.pk).exists()


@pytest.mark.parametrize("status", DONE)
def test_finished_messages_past_the_retention_are_deleted_with_their_attempts(profile, status):
    message = old_message(profile, status)
    attempt = old_attempt(profile, [message])

    deleted = purge_old_rows()

    assert not exists(message) and not exists(attempt)
    assert deleted["messages"] == 1 and deleted["attempts"] == 1
    assert not Attempt.messages.through.objects.exists()


@pytest.mark.parametrize("status", KEPT)
def test_failed_skipped_pending_and_processing_messages_stay_however_old(profile, status):
    message = old_message(profile, status, days=400)
    attempt = old_attempt(profile, [message], days=400)

    deleted = purge_old_rows()

    assert exists(message) and exists(attempt)
    assert deleted["messages"] == 0 and deleted["attempts"] == 0


@pytest.mark.parametrize("status", DONE)
def test_finished_messages_younger_than_the_retention_stay(profile, status):
    message = old_message(profile, status, days=13)
    attempt = old_attempt(profile, [message], days=13)

    purge_old_rows()

    assert exists(message) and exists(attempt)


def test_an_attempt_that_also_carried_a_failed_message_stays_with_it(profile):
    sent = old_message(profile, Status.SENT)
    failed = old_message(profile, Status.FAILED)
    attempt = old_attempt(profile, [sent, failed])

    purge_old_rows()

    assert not exists(sent)
    assert list(attempt.messages.all()) == [failed]


def test_old_attempts_for_no_message_are_deleted_and_young_ones_stay(profile):
    probe = Attempt.objects.create(profile=profile, entity="price", endpoint="probe",
                                   created_at=days_ago(15))
    young_probe = Attempt.objects.create(profile=profile, entity="price", endpoint="probe",
                                         created_at=days_ago(1))

    purge_old_rows()

    assert not exists(probe) and exists(young_probe)


def test_received_notification_ids_are_kept_for_the_retention_only(profile):
    old = ReceivedNotification.objects.create(profile=profile, query="MC-Prices",
                                              notification_id="old", received_at=days_ago(15))
    young = ReceivedNotification.objects.create(profile=profile, query="MC-Prices",
                                                notification_id="young", received_at=days_ago(3))

    deleted = purge_old_rows()

    assert not exists(old) and exists(young)
    assert deleted["received_notifications"] == 1


def test_hourly_statistics_are_kept_for_90_days(profile):
    hour = timezone.now().replace(minute=0, second=0, microsecond=0)
    old = HourlyStats.objects.create(profile=profile, entity="price",
                                     hour=hour - timedelta(days=91))
    young = HourlyStats.objects.create(profile=profile, entity="price",
                                       hour=hour - timedelta(days=89))

    deleted = purge_old_rows()

    assert not exists(old) and exists(young)
    assert deleted["hourly_stats"] == 1


def test_the_retention_is_a_setting(profile, settings):
    settings.CONNECTOR_RETENTION_DAYS = 30
    message = old_message(profile, Status.SENT, days=20)

    purge_old_rows()
    assert exists(message)

    settings.CONNECTOR_RETENTION_DAYS = 14
    purge_old_rows()
    assert not exists(message)


def test_five_messages_with_batch_size_two_go_in_three_batches(profile):
    messages = [old_message(profile, Status.SENT) for _ in range(5)]
    for message in messages:
        old_attempt(profile, [message])
    kept = old_message(profile, Status.FAILED)

    with CaptureQueriesContext(connection) as queries:
        deleted = purge_old_rows(batch_size=2)

    message_table = Message._meta.db_table
    deletes = [query["sql"] for query in queries.captured_queries
               if query["sql"].startswith(f'DELETE FROM "{message_table}"')]
    assert len(deletes) == 3  # 2 + 2 + 1, one statement each
    assert deleted == {"messages": 5, "attempts": 5, "received_notifications": 0,
                       "hourly_stats": 0}
    assert list(Message.objects.all()) == [kept]
    assert not Attempt.objects.exists()


def test_a_purge_that_fails_halfway_keeps_the_batches_it_finished(profile, monkeypatch):
    messages = [old_message(profile, Status.SENT) for _ in range(5)]
    for message in messages:
        old_attempt(profile, [message])
    deletes = []

    def delete_then_lose_the_database(queryset, using):
        deletes.append(queryset.model)
        if deletes.count(Message) == 2:
            raise DatabaseError("server closed the connection unexpectedly")
        return real_delete(queryset, using)

    real_delete = QuerySet._raw_delete
    monkeypatch.setattr(QuerySet, "_raw_delete", delete_then_lose_the_database)
    with pytest.raises(DatabaseError):
        purge_old_rows(batch_size=2)

    remaining = list(Message.objects.order_by("id"))
    assert remaining == messages[2:]  # the first batch is gone for good
    assert all(message.attempt_set.exists() for message in remaining)  # the second is whole


def test_beat_purges_hourly_on_the_default_queue(profile):
    entry = django_settings.CELERY_BEAT_SCHEDULE["connector-retention"]
    assert entry["task"] == "connector.tasks.purge_old_rows"
    assert entry["options"]["queue"] == "default"
    assert entry["schedule"] <= 24 * 3600
    message = old_message(profile, Status.DISMISSED, dismissed_reason="retired SKU")

    tasks.purge_old_rows()

    assert not exists(message)


@pytest.mark.parametrize("days", ["2", "0", "-5"])
def test_a_retention_shorter_than_acumatica_s_resend_window_is_refused(days, tmp_path):
    environment = clean_environment() | {"CONNECTOR_RETENTION_DAYS": days,
                                         "CONNECTOR_VAR_DIR": str(tmp_path),
                                         "DJANGO_SETTINGS_MODULE": "tests.settings"}
    started = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=PROJECT_DIR, env=environment, capture_output=True, text=True, timeout=120,
    )

    assert started.returncode != 0
    assert "CONNECTOR_RETENTION_DAYS must be at least 3" in started.stderr
