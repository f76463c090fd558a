"""/healthz: database, broker, and the beat and worker heartbeats."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from connector.models import Heartbeat

pytestmark = pytest.mark.django_db


def test_healthz_answers_503_naming_beat_and_worker_before_any_heartbeat(client):
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "down"
    assert body["down"] == ["beat", "worker"]
    assert body["checks"]["database"]["ok"] is True


def test_healthz_answers_200_with_fresh_heartbeats(client):
    Heartbeat.beat("beat")
    Heartbeat.beat("worker")
    response = client.get("/healthz")
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "ok"


def test_healthz_names_the_worker_when_its_heartbeat_is_stale(client):
    Heartbeat.beat("beat")
    Heartbeat.objects.create(process="worker", seen_at=timezone.now() - timedelta(minutes=5))
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["down"] == ["worker"]
    assert "300 s ago" in response.json()["checks"]["worker"]["detail"]


def test_healthz_names_the_broker_when_it_does_not_answer(client, settings):
    Heartbeat.beat("beat")
    Heartbeat.beat("worker")
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["down"] == ["broker"]
