"""The push-notification receiver fuzzed: arbitrary JSON values and shapes, wrong content
types, huge strings, deep nesting. It never answers 500, and after every 4xx the database is
as it was (Acumatica retries an error reply, so an error must mean nothing was stored)."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from message_queue.models import KeyState, Message, ReceivedNotification
from setup_params.models import Profile, get_profile

pytestmark = pytest.mark.django_db

PUSH_MAX_BYTES = 256 * 1024
ANSWERS = {200, 400, 401, 403, 413, 422}
CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "text/plain",
    "text/html; charset=latin-1",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=acumatica",
    "application/octet-stream",
    "",
]
# Any text, with the characters a database cannot store drawn often: NUL (PostgreSQL's text
# refuses it) and lone surrogates (not encodable as UTF-8; JSON can carry them as \ud800).
TEXT = st.text(st.characters() | st.sampled_from(["\x00", "\ud800", "\udfff"]), max_size=30)
INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
SCALARS = (st.none() | st.booleans() | INT64 | st.integers()
           | st.floats(allow_nan=True, allow_infinity=True) | TEXT)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=12,
)
HUGE_TEXT = st.builds(lambda character, size: character * size,
                      st.sampled_from("A \u00e9\u4e2d\U0001f600"),
                      st.integers(1_000, 300_000))
SKUS = st.sampled_from(["AALEGO500", "AALEGO500 ", " aalego500", "SKU-1", "SKU 2", "1234"])
FIELD_VALUES = (SKUS | st.sampled_from(["MAIN", "MAIN ", "EAST", "", " "])
                | st.sampled_from(["12.5", "-3", "1e3", "NaN", "Infinity", "1e999", "0x10", "٣"])
                | st.floats(allow_nan=True, allow_infinity=True) | INT64 | JSON_VALUES
                | HUGE_TEXT)
FIELD_NAMES = st.sampled_from(["InventoryID", "Warehouse", "QtyAvailable", "QtyOnHand",
                               "DefaultPrice", "Description"]) | TEXT
ROWS = st.lists(st.dictionaries(FIELD_NAMES, FIELD_VALUES, max_size=6), max_size=6)


NUMBERS = (st.none() | st.integers(-10**6, 10**13) | st.floats(allow_nan=True, allow_infinity=True)
           | st.sampled_from(["12.5", " 7 ", "-3", "1e3", "NaN", "Infinity", "0x10", "٣", ""]))
GOOD_NUMBERS = st.none() | st.integers(0, 10**6) | st.floats(0, 1e6) | st.just("12.50")
PLAUSIBLE_ROWS = st.lists(
    st.fixed_dictionaries(
        {"InventoryID": st.one_of(SKUS, SKUS, SKUS, TEXT, FIELD_VALUES),
         "Warehouse": st.one_of(*[st.sampled_from(["MAIN", "MAIN ", "EAST"])] * 3, FIELD_VALUES)},
        optional={"QtyAvailable": st.one_of(GOOD_NUMBERS, GOOD_NUMBERS, NUMBERS),
                  "QtyOnHand": NUMBERS,
                  "DefaultPrice": st.one_of(GOOD_NUMBERS, GOOD_NUMBERS, NUMBERS),
                  "Description": st.one_of(TEXT, TEXT, HUGE_TEXT)},
    ),
    max_size=5,
)


@st.composite
def notifications(draw) -> dict:
    """Shapes near a real push notification: each field right, wrong or missing."""
    if draw(st.booleans()):  # plausible: only the rows are fuzzed
        return {
            "Inserted": draw(PLAUSIBLE_ROWS),
            "Deleted": draw(PLAUSIBLE_ROWS | st.none()),
            "Query": draw(st.sampled_from(["MC-Prices", "MC-Inventory", " MC-Prices"])),
            "CompanyId": draw(TEXT),
            "Id": draw(st.uuids().map(str) | st.sampled_from(["repeat-1", "repeat-2"])),
            "TimeStamp": draw(st.integers(min_value=0, max_value=2**63 - 1)
                              | st.integers(min_value=2**63 - 2, max_value=2**70)),
        }
    document = draw(st.fixed_dictionaries(
        {},
        optional={
            "Query": st.sampled_from(["MC-Prices", "MC-Inventory", "MC-Prices ", "Other"])
            | JSON_VALUES,
            "Id": st.uuids().map(str) | TEXT | JSON_VALUES | HUGE_TEXT,
            "TimeStamp": st.integers(min_value=-10, max_value=2**70) | JSON_VALUES,
            "Inserted": ROWS | PLAUSIBLE_ROWS | JSON_VALUES,
            "Deleted": ROWS | JSON_VALUES,
            "CompanyId": JSON_VALUES | HUGE_TEXT,
            "AdditionalInfo": JSON_VALUES,
        },
    ))
    extra = draw(st.dictionaries(TEXT, JSON_VALUES, max_size=2))
    return {**extra, **document}


def deeply_nested(depth: int, inside: str) -> str:
    nested = "[" * depth + "]" * depth
    return inside.replace("@", nested)


BODIES = st.one_of(
    notifications().map(json.dumps),
    notifications().map(json.dumps),
    JSON_VALUES.map(json.dumps),
    st.binary(max_size=200),
    notifications().map(json.dumps).flatmap(
        lambda text: st.integers(0, len(text)).map(lambda cut: text[:cut])
    ),
    st.builds(
        deeply_nested,
        st.integers(1, 200_000),
        st.sampled_from([
            "@",
            '{"Query":"MC-Prices","Id":"deep","TimeStamp":1,"Inserted":[{"InventoryID":@}]}',
            '{"Query":"MC-Prices","Id":"deep-company","TimeStamp":1,"CompanyId":@}',
            '{"Query":"MC-Inventory","Id":"deep-info","TimeStamp":1,"AdditionalInfo":@}',
        ]),
    ),
    st.builds(
        lambda digits, where: where.replace("@", "9" * digits),
        st.integers(4000, 6000),  # Python's int parser refuses more than 4300 digits
        st.sampled_from(['{"Query":"MC-Prices","Id":"long","TimeStamp":@}',
                         '{"Query":"MC-Prices","Id":"long","TimeStamp":1,'
                         '"Inserted":[{"InventoryID":"A","DefaultPrice":@}]}']),
    ),
    HUGE_TEXT.map(lambda text: json.dumps({"Query": "MC-Prices", "Id": "huge", "TimeStamp": 1,
                                           "Inserted": [{"InventoryID": text,
                                                         "DefaultPrice": 1}]})),
)


@pytest.fixture
def receiving(db) -> Profile:
    profile = get_profile("default")
    profile.state = Profile.State.ACTIVE
    profile.push_max_bytes = PUSH_MAX_BYTES
    profile.save(update_fields=["state", "push_max_bytes"])
    return get_profile("default")


def row_counts() -> tuple[int, int, int]:
    return (Message.objects.count(), KeyState.objects.count(),
            ReceivedNotification.objects.count())


def post(profile: Profile, body: str | bytes, content_type: str, secret: str | None):
    headers = {profile.push_header_name: secret} if secret is not None else {}
    data = body.encode() if isinstance(body, str) else body
    client = Client(raise_request_exception=False)
    return client.generic("POST", f"/acumatica/push/{profile.name}/", data=data,
                          content_type=content_type, headers=headers)


@settings(max_examples=400, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large, HealthCheck.large_base_example])
@given(
    body=BODIES,
    content_type=st.sampled_from(CONTENT_TYPES),
    secret=st.sampled_from(["right"] * 8 + ["wrong", None]),
)
def test_the_receiver_never_answers_500_and_a_refusal_stores_nothing(
    receiving, body, content_type, secret
):
    before = row_counts()
    presented = receiving.push_secret if secret == "right" else secret
    response = post(receiving, body, content_type, presented)

    event(f"HTTP {response.status_code}")
    assert response.status_code in ANSWERS, response.content[:500]
    answer = response.json()
    if response.status_code == 200:
        assert answer["status"] in ("stored", "duplicate")
    else:
        assert answer["error"]
        assert row_counts() == before, "an error reply stores nothing"


def price_notification(sku: str = "AALEGO500", *, id: str = "fuzz-1", timestamp=1) -> str:
    return json.dumps({"Query": "MC-Prices", "Id": id, "TimeStamp": timestamp,
                       "Inserted": [{"InventoryID": sku, "DefaultPrice": 1.5}]})


# Found by the fuzzing above: each once reached the database (or Python's int parser)
# unchecked and ended in a 500, so Acumatica retried a notification that could never be stored.
KNOWN_CRASHERS = {
    "NUL in a SKU": price_notification("AALE\u0000GO500"),
    "NUL in the Id": price_notification(id="fuzz-\u00002"),
    "lone surrogate in a SKU": price_notification("AALEGO\ud800"),
    "lone surrogate in the Id": price_notification(id="fuzz-\udfff"),
    "TimeStamp beyond 64 bits": price_notification(timestamp=2**63),
    "integer of 5000 digits": '{"Query":"MC-Prices","Id":"x","TimeStamp":' + "9" * 5000 + "}",
}


@pytest.mark.parametrize("case", list(KNOWN_CRASHERS))
def test_known_crashers_are_refused_with_400_and_store_nothing(receiving, case):
    body = KNOWN_CRASHERS[case]
    before = row_counts()
    response = post(receiving, body, "application/json", receiving.push_secret)
    assert response.status_code == 400, response.status_code
    assert row_counts() == before
