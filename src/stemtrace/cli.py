"""The ``stemtrace`` command. Imports nothing from the server extra until a command needs it."""

from __future__ import annotations

import sys
from typing import Any

import click

from stemtrace import __version__
from stemtrace.server.cli import run_server, server_options


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="stemtrace")
def main() -> None:
    """stemtrace: see what your Celery workflows really did."""


@main.command("server")
@server_options
def server(**options: Any) -> None:
    """Run the stemtrace server: ingest events, store them, serve the API and UI.

    Every option can also be set as an environment variable STEMTRACE_<NAME>.
    """
    run_server(**options)


@main.command("hash-password")
@click.option(
    "--password", prompt=True, hide_input=True, confirmation_prompt=True, help="The password to hash."
)
def hash_password(password: str) -> None:
    """Print a hash for --auth-password-hash (STEMTRACE_AUTH_PASSWORD_HASH)."""
    from stemtrace.server.security import hash_password as make

    click.echo(make(password))


def _register_queries() -> None:
    from stemtrace.query_cli import COMMANDS

    for command in COMMANDS:
        main.add_command(command)


_register_queries()


def _register_optional() -> None:
    try:
        from stemtrace.demo.cli import demo
    except ImportError:
        return
    main.add_command(demo)


_register_optional()

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
