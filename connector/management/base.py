"""The exit-status convention of the connector's management commands (DESIGN.md section 6).

0 done; 1 the operation failed (reason on stderr); 2 bad usage or invalid input (reason on
stderr). Django's parser already exits 2 for bad usage on the command line; through
`call_command` it raises CommandError with status 1, which `UsageParser` makes 2 as well.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from setup_params.models import DEFAULT_PROFILE, Profile, get_profile

EXIT_FAILED = 1
EXIT_USAGE = 2


def failed(message: str) -> CommandError:
    """The operation failed: `raise failed("...")` exits 1 with the message on stderr."""
    return CommandError(message, returncode=EXIT_FAILED)


def invalid(message: str) -> CommandError:
    """Bad usage or an invalid value: `raise invalid("...")` exits 2."""
    return CommandError(message, returncode=EXIT_USAGE)


class UsageParser(CommandParser):
    def error(self, message: str):
        if self.called_from_command_line:
            super().error(message)  # argparse prints the usage and exits 2
        raise invalid(f"Error: {message}")


class ConnectorCommand(BaseCommand):
    def create_parser(self, prog_name: str, subcommand: str, **kwargs) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        # Django builds a plain CommandParser and gives no way to choose its class. Subparsers
        # are added in add_arguments, before this line: give them
        # `add_subparsers(parser_class=UsageParser)`.
        parser.__class__ = UsageParser
        return parser


class ProfileCommand(ConnectorCommand):
    """A command that acts on one profile, named with `--profile` (default `default`)."""

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--profile",
            default=DEFAULT_PROFILE,
            help=f"The profile's name (default: {DEFAULT_PROFILE}).",
        )

    def get_profile(self, name: str) -> Profile:
        """The profile with its Magento and queue settings; a missing one exits 1."""
        try:
            return get_profile(name)
        except Profile.DoesNotExist:
            raise failed(f"No profile named '{name}'.") from None
