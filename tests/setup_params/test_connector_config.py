"""`connector_config show | set | rotate_push_secret`: settings on the command line."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from datetime import UTC, datetime

import pytest
from django.core.management import CommandError, call_command

from connector.models import AuditEntry
from setup_params.models import Profile, get_profile
from setup_params.services import describe_profile
from tests.helpers import PROJECT_DIR, subprocess_environment

TOKEN = "tok-cli-0a9b8c7d6e5f"

EVERY_SETTING = {
    "magento_url": "https://shop.example.com",
    "magento_token": TOKEN,
    "store_code": "fr",
    "price_store_id": 2,
    "source_code": "east",
    "use_msi": False,
    "timeout": 12,
    "verify_tls": False,
    "threshold_count": 40,
    "batch_count": 15,
    "retry_count": 5,
    "check_process_time": 30,
    "process_sleep_time": 3,
    "senders": 4,
    "push_header_name": "X-Acumatica-Secret",
    "push_max_bytes": 2048,
    "inventory_query": "MyInventory",
    "inventory_sku_field": "ItemID",
    "inventory_warehouse_field": "SiteID",
    "inventory_qty_field": "QtyOnHand",
    "price_query": "MyPrices",
    "price_sku_field": "ItemID",
    "price_field": "Price",
    "warehouse_sources": "MAIN=default,EAST=east",
    "outage_threshold": 9,
    "acumatica_url": "https://erp.example.com/AcumaticaERP",
    "acumatica_endpoint": "Manufacturing",
    "acumatica_version": "23.200.001",
    "acumatica_tenant": "Company",
    "acumatica_branch": "HQ",
    "acumatica_auth": "oauth2",
    "acumatica_username": "integration",
    "acumatica_password": "acu-cli-password-1f2e",
    "acumatica_client_id": "9B6B0D52-3C4A-4E0B-8F0D-2A1C5E7B9D31@Company",
    "acumatica_client_secret": "acu-cli-secret-3d4c5b",
    "acumatica_scopes": "openid api",
    "acumatica_concurrency": 8,
    "acumatica_time_zone": "Europe/Berlin",
    "acumatica_time_offset": 120,
    "acumatica_page_size": 250,
    "acumatica_batch_size": 5000,
    "acumatica_timeout": 90,
}
ACUMATICA_SECRETS = {
    "acumatica_password": EVERY_SETTING["acumatica_password"],
    "acumatica_client_secret": EVERY_SETTING["acumatica_client_secret"],
}


def as_text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def run(*arguments: str) -> tuple[str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    call_command("connector_config", *arguments, stdout=stdout, stderr=stderr)
    return stdout.getvalue(), stderr.getvalue()


def exit_status(*arguments: str) -> tuple[int, str]:
    with pytest.raises(CommandError) as failure:
        run(*arguments)
    return failure.value.returncode, str(failure.value)


def show_json(*arguments: str) -> dict:
    stdout, _ = run("show", "--json", *arguments)
    return json.loads(stdout)


def manage_py(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "connector_config", *arguments],
        cwd=PROJECT_DIR,
        env=subprocess_environment(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


# --- show ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_set_then_show_json_round_trips_every_setting():
    run("set", *[f"{key}={as_text(value)}" for key, value in EVERY_SETTING.items()])

    shown = show_json("--reveal")

    assert {key: shown[key] for key in EVERY_SETTING} == EVERY_SETTING
    assert shown["profile"] == "default" and shown["state"] == "new"
    assert shown["push_url"] == "http://127.0.0.1:8000/acumatica/push/default/"
    assert shown["push_secret"] == get_profile().push_secret


@pytest.mark.django_db
def test_show_prints_every_setting_the_state_and_the_push_address():
    stdout, _ = run("show")

    lines = {
        key: value.strip()
        for key, _, value in (line.partition(" ") for line in stdout.splitlines())
    }
    assert lines["profile"] == "default"
    assert lines["state"] == "new"
    assert lines["push_url"] == "http://127.0.0.1:8000/acumatica/push/default/"
    assert lines["push_header_name"] == "X-Connector-Secret"
    assert lines["batch_count"] == "20" and lines["use_msi"] == "true"
    assert set(EVERY_SETTING) <= set(lines)


@pytest.mark.django_db
@pytest.mark.parametrize("as_json", [False, True])
def test_show_without_reveal_never_prints_a_secret(as_json):
    run("set", f"magento_token={TOKEN}")
    push_secret = get_profile().push_secret

    stdout, _ = run("show", *(["--json"] if as_json else []))

    assert TOKEN not in stdout and push_secret not in stdout
    if as_json:
        shown = json.loads(stdout)
        assert shown["magento_token"] == shown["push_secret"] == "•••• set"


@pytest.mark.django_db
def test_show_reveal_prints_the_secrets():
    run("set", f"magento_token={TOKEN}")

    stdout, _ = run("show", "--reveal")

    assert TOKEN in stdout and get_profile().push_secret in stdout


@pytest.mark.django_db
def test_an_unset_token_shows_empty():
    assert show_json()["magento_token"] == ""


@pytest.mark.django_db
@pytest.mark.parametrize("as_json", [False, True])
def test_show_masks_the_acumatica_password_and_client_secret_unless_reveal(as_json):
    run("set", *[f"{key}={value}" for key, value in ACUMATICA_SECRETS.items()])
    json_flag = ["--json"] if as_json else []

    masked, _ = run("show", *json_flag)
    revealed, _ = run("show", "--reveal", *json_flag)

    for secret in ACUMATICA_SECRETS.values():
        assert secret not in masked and secret in revealed
    if as_json:
        shown = json.loads(masked)
        assert shown["acumatica_password"] == shown["acumatica_client_secret"] == "•••• set"


@pytest.mark.django_db
@pytest.mark.parametrize("reveal", [[], ["--reveal"]])
def test_oauth_tokens_are_never_shown_only_that_they_are_set(reveal):
    settings = get_profile().acumatica_settings
    settings.access_token, settings.refresh_token = "access-tok-9a8b7c6d", "refresh-tok-1a2b3c4d"
    settings.token_expires_at = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    settings.save()

    stdout, _ = run("show", "--json", *reveal)

    assert "access-tok-9a8b7c6d" not in stdout and "refresh-tok-1a2b3c4d" not in stdout
    shown = json.loads(stdout)
    assert shown["acumatica_tokens"] == "set"
    assert shown["acumatica_token_expires_at"] == "2030-01-02T03:04:05+00:00"


@pytest.mark.django_db
def test_no_tokens_show_empty():
    shown = show_json()

    assert (shown["acumatica_tokens"], shown["acumatica_token_expires_at"]) == ("", "")
    assert shown["acumatica_page_size"] == 500 and shown["acumatica_batch_size"] == 2000
    assert shown["acumatica_scopes"] == "openid api offline_access"


# --- set -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_set_writes_one_audit_entry_by_field_name_as_cli():
    run("set", "batch_count=10", f"magento_token={TOKEN}")

    entry = AuditEntry.objects.get()
    assert (entry.kind, entry.actor, entry.user, entry.fields) == (
        "settings_changed",
        "cli",
        None,
        ["batch_count", "magento_token"],
    )
    assert TOKEN not in f"{entry.fields} {entry.detail}"


@pytest.mark.django_db
def test_set_reads_the_token_from_a_file_stripped(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(f"  {TOKEN}\n")

    run("set", f"magento_token_file={token_file}")

    assert get_profile().magento_settings.token == TOKEN
    assert TOKEN not in get_profile().magento_settings.token_encrypted


@pytest.mark.django_db
def test_set_cuts_a_pasted_rest_address_back_and_says_so():
    stdout, _ = run("set", "magento_url=https://shop.example.com/rest/default/V1/")

    assert get_profile().magento_settings.magento_url == "https://shop.example.com"
    assert (
        "The Magento URL was cut back to https://shop.example.com "
        "(the connector adds /rest/<store code>/V1 itself)."
    ) in stdout


@pytest.mark.django_db
def test_set_cuts_a_pasted_acumatica_api_address_back_and_says_so():
    stdout, _ = run("set", "acumatica_url=https://erp.example.com/AcumaticaERP/entity/Default/"
                           "24.200.001/StockItem")

    assert get_profile().acumatica_settings.instance_url == "https://erp.example.com/AcumaticaERP"
    assert (
        "The instance URL was cut back to https://erp.example.com/AcumaticaERP "
        "(the connector adds /entity/<endpoint>/<version> itself)."
    ) in stdout


@pytest.mark.django_db
def test_set_reads_acumatica_secrets_from_files_keeping_inner_spaces(tmp_path):
    password_file, secret_file = tmp_path / "password", tmp_path / "secret"
    password_file.write_text(" pass word \n")
    secret_file.write_text("client-secret-from-file\n")

    run("set", f"acumatica_password_file={password_file}",
        f"acumatica_client_secret_file={secret_file}")

    settings = get_profile().acumatica_settings
    assert settings.password == " pass word "
    assert settings.client_secret == "client-secret-from-file"
    entry = AuditEntry.objects.get()
    assert entry.fields == ["acumatica_client_secret", "acumatica_password"]
    assert "pass word" not in f"{entry.fields} {entry.detail}"


@pytest.mark.django_db
def test_a_new_acumatica_url_drops_the_stored_tokens():
    run("set", "acumatica_url=https://erp.example.com")
    settings = get_profile().acumatica_settings
    settings.access_token, settings.refresh_token = "access-tok-9a8b7c6d", "refresh-tok-1a2b3c4d"
    settings.save()

    stdout, _ = run("set", "acumatica_url=https://other.example.com")

    assert "acumatica_tokens, acumatica_url changed" in stdout
    settings = get_profile().acumatica_settings
    assert not settings.access_token_encrypted and not settings.refresh_token_encrypted
    assert AuditEntry.objects.first().fields == ["acumatica_tokens", "acumatica_url"]


@pytest.mark.django_db
def test_setting_the_same_values_again_changes_nothing():
    run("set", "batch_count=10")

    stdout, _ = run("set", "batch_count=10")

    assert "Nothing changed" in stdout
    assert AuditEntry.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("pairs", "reason"),
    [
        (
            ["magento_url=ftp://shop.example.com"],
            "magento_url: The Magento URL must start with http:// or https://",
        ),
        (["threshold_count=0"], "threshold_count: Threshold count must be at least 1."),
        (["batch_count=10001"], "batch_count: Batch count must be between 1 and 10000."),
        (["batch_count=many"], "batch_count: Batch count must be a whole number, not 'many'."),
        (["retry_count=0"], "retry_count: Retry count must be between 1 and 100."),
        (
            ["check_process_time=60"],
            "check_process_time: Check process time must be between 1 and 59 seconds.",
        ),
        (
            ["process_sleep_time=50"],
            "process_sleep_time: Process sleep time (50 s) must be less than the check process "
            "time (50 s).",
        ),
        (
            ["check_process_time=4"],
            "process_sleep_time: Process sleep time (5 s) must be less than the check process "
            "time (4 s).",
        ),
        (["senders=17"], "senders: Senders must be between 1 and 16."),
        (["use_msi=yes"], "use_msi: use_msi must be true or false, not 'yes'."),
        (
            ["warehouse_sources=MAIN"],
            "warehouse_sources: 'MAIN' is not WAREHOUSE=SOURCE (e.g. MAIN=default, or *=default).",
        ),
        (["push_header_name=X_Secret"], "push_header_name: Push header name may contain only"),
        (
            ["magento_token=two words"],
            "magento_token: The bearer token must not contain spaces or line breaks.",
        ),
        (["batch_count"], "'batch_count' is not KEY=VALUE."),
        (["batch_count=10", "senders=0"], "senders: Senders must be between 1 and 16."),
        (
            ["acumatica_url=erp.example.com"],
            "acumatica_url: The instance URL must start with http:// or https://",
        ),
        (
            ["acumatica_endpoint=Custom"],
            "acumatica_endpoint: The endpoint must be one of Default, Manufacturing, Ecommerce.",
        ),
        (["acumatica_version=latest"], "acumatica_version: The endpoint version must look like"),
        (
            ["acumatica_auth=basic"],
            "acumatica_auth: The authentication must be cookie or oauth2, not 'basic'.",
        ),
        (
            ["acumatica_client_id=my-app"],
            "acumatica_client_id: The client id must look like <GUID>@<Tenant>",
        ),
        (["acumatica_password="], "acumatica_password: The password must not be empty."),
        (["acumatica_scopes=openid"], "acumatica_scopes: The scopes must include api"),
        (
            ["acumatica_concurrency=26"],
            "acumatica_concurrency: Concurrency level must be between 1 and 25.",
        ),
        (
            ["acumatica_time_zone=Europe/Atlantis"],
            "acumatica_time_zone: 'Europe/Atlantis' is not an IANA time zone name",
        ),
        (
            ["acumatica_time_offset=3601"],
            "acumatica_time_offset: Time offset must be between 0 and 3600 seconds.",
        ),
        (["acumatica_page_size=0"], "acumatica_page_size: Page size must be between 1 and 10000."),
        (
            ["acumatica_batch_size=10001"],
            "acumatica_batch_size: Batch size must be between 1 and 10000.",
        ),
        (
            ["acumatica_timeout=0"],
            "acumatica_timeout: Timeout must be between 1 and 600 seconds.",
        ),
    ],
)
def test_an_invalid_value_exits_2_with_the_reason_and_changes_nothing(pairs, reason):
    before = describe_profile(get_profile(), reveal=True)

    status, message = exit_status("set", *pairs)

    assert status == 2
    assert reason in message
    assert describe_profile(get_profile(), reveal=True) == before
    assert not AuditEntry.objects.exists()


@pytest.mark.django_db
def test_an_unknown_key_exits_2_naming_the_known_keys():
    status, message = exit_status("set", "batch_size=10")

    assert status == 2
    assert "Unknown setting 'batch_size'." in message
    assert "batch_count" in message and "magento_token_file" in message
    assert "acumatica_batch_size" in message and "acumatica_password_file" in message


@pytest.mark.django_db
def test_an_unreadable_token_file_exits_2(tmp_path):
    status, message = exit_status("set", f"magento_token_file={tmp_path / 'missing'}")

    assert status == 2 and "Cannot read the token file" in message


# --- profiles ------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "arguments",
    [
        ["show", "--profile", "nope"],
        ["set", "--profile", "nope", "batch_count=10"],
        ["rotate_push_secret", "--profile", "nope"],
    ],
)
def test_a_missing_profile_exits_1(arguments):
    status, message = exit_status(*arguments)

    assert status == 1 and "No profile named 'nope'" in message
    assert not Profile.objects.filter(name="nope").exists()


@pytest.mark.django_db
def test_set_with_create_makes_the_profile():
    run("set", "--profile", "sandbox", "--create", "batch_count=10")

    profile = get_profile("sandbox")
    assert profile.queue_settings.batch_count == 10 and profile.push_secret
    assert show_json("--profile", "sandbox")["push_url"].endswith("/acumatica/push/sandbox/")


@pytest.mark.django_db
def test_set_with_create_and_an_invalid_value_creates_nothing():
    status, _ = exit_status("set", "--profile", "sandbox", "--create", "batch_count=0")

    assert status == 2 and not Profile.objects.filter(name="sandbox").exists()


@pytest.mark.django_db
def test_set_with_create_refuses_a_name_that_is_not_a_slug():
    status, message = exit_status("set", "--profile", "my shop", "--create", "batch_count=10")

    assert status == 2 and "'my shop' is not a profile name" in message


# --- rotate_push_secret --------------------------------------------------------------------


@pytest.mark.django_db
def test_rotate_push_secret_prints_the_new_secret_once_and_audits_it():
    old_secret = get_profile().push_secret

    stdout, _ = run("rotate_push_secret")

    new_secret = get_profile().push_secret
    assert new_secret != old_secret
    assert stdout.splitlines()[-1] == new_secret
    assert "X-Connector-Secret" in stdout
    entry = AuditEntry.objects.get()
    assert (entry.kind, entry.actor, entry.fields) == ("secret_rotated", "cli", ["push_secret"])
    assert new_secret not in entry.detail
    assert new_secret not in run("show")[0]


# --- bad usage -----------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "arguments", [[], ["explode"], ["show", "--bogus"], ["set"], ["set", "--profile"]]
)
def test_bad_usage_exits_2(arguments):
    status, _ = exit_status(*arguments)

    assert status == 2


# --- real processes: what a shell script sees ----------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_manage_py_exit_statuses_are_0_1_and_2(committed_defaults):
    saved = manage_py("set", "batch_count=30")
    invalid = manage_py("set", "batch_count=0")
    missing = manage_py("show", "--profile", "nope")
    usage = manage_py("show", "--bogus")
    nothing = manage_py()

    assert saved.returncode == 0, saved.stderr
    assert "batch_count changed" in saved.stdout
    assert get_profile().queue_settings.batch_count == 30
    assert (invalid.returncode, missing.returncode, usage.returncode) == (2, 1, 2)
    assert "Batch count must be between 1 and 10000." in invalid.stderr
    assert "No profile named 'nope'." in missing.stderr
    assert "unrecognized arguments: --bogus" in usage.stderr
    assert nothing.returncode == 2 and "required" in nothing.stderr


@pytest.mark.django_db(transaction=True)
def test_manage_py_show_json_prints_one_json_object(committed_defaults):
    finished = manage_py("show", "--json")

    assert finished.returncode == 0, finished.stderr
    assert json.loads(finished.stdout)["profile"] == "default"
