"""`connector_config show | set | rotate_push_secret`: a profile's settings for automation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_slug
from django.db import transaction

from connector.management.base import ConnectorCommand, UsageParser, failed, invalid
from setup_params import services
from setup_params.models import DEFAULT_PROFILE, Profile, QueueSettings, create_profile
from setup_params.validation import (
    SECRET_KEYS,
    SETTING_KEYS,
    InvalidSetting,
    check_sleep_time,
    clean_acumatica_url,
    clean_magento_url,
    parse_setting,
)

CLI_ACTOR = "cli"
# `magento_token_file=PATH`, `acumatica_password_file=PATH`, …: a secret read from a file,
# so that it never shows in the process list or the shell's history.
FILE_SUFFIX = "_file"
SECRET_FILE_KEYS = {f"{key}{FILE_SUFFIX}": key for key in SECRET_KEYS}
# Settings whose value may be tidied (an API path cut off): the user is told.
URL_CLEANERS = {"magento_url": clean_magento_url, "acumatica_url": clean_acumatica_url}


def find_profile(name: str) -> Profile | None:
    return Profile.objects.select_related(
        "magento_settings", "queue_settings", "acumatica_settings"
    ).filter(name=name).first()


def read_secret_file(key: str, text: str) -> str:
    """The file's text without its final line break (a password may end in spaces)."""
    try:
        content = Path(text).read_text()
    except OSError as error:
        what = key.removeprefix("magento_").removeprefix("acumatica_").replace("_", " ")
        raise InvalidSetting(
            key, f"Cannot read the {what} file {text}: {error.strerror}."
        ) from error
    if key == "magento_token":
        return content.strip()
    return content.removesuffix("\n").removesuffix("\r")


class Command(ConnectorCommand):
    help = (
        "Show a profile's settings (secrets masked unless --reveal), set them as KEY=VALUE "
        "pairs with the Setup Parameters screen's rules, or rotate the push secret."
    )

    def add_arguments(self, parser) -> None:
        # UsageParser: a subcommand's bad usage exits 2 through call_command too.
        actions = parser.add_subparsers(dest="action", required=True, parser_class=UsageParser)
        show = actions.add_parser("show", help="Print every setting of a profile.")
        show.add_argument("--json", action="store_true", help="One JSON object.")
        show.add_argument("--reveal", action="store_true", help="Print secrets in clear.")
        change = actions.add_parser(
            "set",
            help=f"Change settings: KEY=VALUE with KEY one of {', '.join(SETTING_KEYS)}, "
            f"or {', '.join(SECRET_FILE_KEYS)}=PATH to read a secret from a file. Booleans "
            "are true/false; time zones IANA names.",
        )
        change.add_argument("pairs", nargs="+", metavar="KEY=VALUE")
        change.add_argument(
            "--create", action="store_true", help="Create the profile if it does not exist."
        )
        rotate = actions.add_parser(
            "rotate_push_secret", help="Make a new push secret and print it once."
        )
        for subparser in (show, change, rotate):
            subparser.add_argument("--profile", default=DEFAULT_PROFILE, help="Profile name.")

    def handle(self, *args: Any, action: str, profile: str, **options: Any) -> None:
        if action == "set":
            self.set_settings(profile, options["pairs"], create=options["create"])
            return
        found = find_profile(profile)
        if found is None:
            raise failed(f"No profile named '{profile}'.")
        if action == "show":
            self.show(found, as_json=options["json"], reveal=options["reveal"])
        else:
            secret = services.rotate_push_secret(found, actor=CLI_ACTOR)
            self.stdout.write(
                f"New push secret of profile '{found.name}'; set it as the Header Value of "
                f"{found.push_header_name} on Acumatica's Push Notifications form "
                "(it is not shown again):"
            )
            self.stdout.write(secret)

    def show(self, profile: Profile, *, as_json: bool, reveal: bool) -> None:
        description = services.describe_profile(profile, reveal=reveal)
        if as_json:
            self.stdout.write(json.dumps(description, ensure_ascii=False))
            return
        width = max(len(key) for key in description)
        for key, value in description.items():
            if isinstance(value, bool):
                value = "true" if value else "false"
            self.stdout.write(f"{key.ljust(width)}  {value}")

    def set_settings(self, name: str, pairs: list[str], *, create: bool) -> None:
        profile = find_profile(name)
        if profile is None and not create:
            raise failed(f"No profile named '{name}' (add --create to make it).")
        if profile is None:
            try:
                validate_slug(name)
            except ValidationError as error:
                raise invalid(f"'{name}' is not a profile name: {error.messages[0]}") from None

        values, notices = self.parse_pairs(pairs, profile)

        with transaction.atomic():
            if profile is None:
                profile = create_profile(name)
                self.stdout.write(f"Created profile '{name}'.")
            changed = services.save_settings(profile, values, actor=CLI_ACTOR)
        for notice in notices:
            self.stdout.write(notice)
        if changed:
            self.stdout.write(f"Saved profile '{profile.name}': {', '.join(changed)} changed.")
        else:
            self.stdout.write(f"Nothing changed in profile '{profile.name}'.")

    def parse_pairs(
        self, pairs: list[str], profile: Profile | None
    ) -> tuple[dict[str, Any], list[str]]:
        """Every pair checked; any invalid one stops the command before anything is saved."""
        values: dict[str, Any] = {}
        notices: list[str] = []
        problems: list[tuple[str, str]] = []
        for pair in pairs:
            key, separator, text = pair.partition("=")
            key = key.strip()
            if not separator:
                problems.append((pair, f"'{pair}' is not KEY=VALUE."))
                continue
            from_file = key in SECRET_FILE_KEYS
            if from_file:
                key = SECRET_FILE_KEYS[key]
            elif key not in SETTING_KEYS:
                raise invalid(
                    f"Unknown setting '{key}'. Known settings: "
                    f"{', '.join([*SETTING_KEYS, *SECRET_FILE_KEYS])}."
                )
            if key in values:
                problems.append((key, f"{key}: given more than once."))
                continue
            try:
                if from_file:
                    text = read_secret_file(key, text)
                values[key] = parse_setting(key, text)
                if key in URL_CLEANERS:
                    notices.append(URL_CLEANERS[key](text)[1])
            except InvalidSetting as error:
                problems.append((key, f"{key}: {error}"))
        timing = ("process_sleep_time", "check_process_time")
        timing_given = any(key in values for key in timing)
        if timing_given and not any(key in timing for key, _ in problems):
            sleep, check = (
                values.get(key, stored_queue_value(profile, key))
                for key in timing
            )
            try:
                check_sleep_time(sleep, check)
            except InvalidSetting as error:
                problems.append((error.key, f"{error.key}: {error}"))
        if problems:
            raise invalid("\n".join(message for _, message in problems))
        return values, [notice for notice in notices if notice]


def stored_queue_value(profile: Profile | None, key: str) -> int:
    """The stored value, or the default for a profile about to be created."""
    if profile is None:
        return QueueSettings._meta.get_field(key).default
    return getattr(profile.queue_settings, key)
