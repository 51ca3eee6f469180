"""``stemtrace server``: options from the settings table, friendly startup and failure messages.

Kept apart from ``stemtrace/cli.py`` so the top-level CLI imports nothing from the
server extra until this command actually runs.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from stemtrace.core.settings import Setting, format_duration
from stemtrace.server.settings import SETTINGS, ServerSettings, SettingsError, is_loopback

INSTALL_HINT = 'The server is not installed. Install it with:  pip install "stemtrace[server]"'
GRACEFUL_SHUTDOWN_S = 3  # seconds a stop waits for open responses before cancelling them
# Secrets in clear never go on a command line (visible in `ps`): environment only.
CLI_EXCLUDED = {s.name for s in SETTINGS if s.env_only}


def _default_text(setting: Setting) -> str | None:
    if setting.default in (None, (), "", False) or setting.secret:
        return None
    if setting.kind == "duration":
        return format_duration(setting.coerce(setting.default))
    return str(setting.default)


def _option(setting: Setting, name: str | None = None) -> Any:
    """The flag of ``setting``; with ``name``, the hidden flag of a name it was renamed from.

    Values arrive as text and are parsed by the settings table, so a flag and its environment
    variable accept the same grammar and fail with the same message.
    """
    dest = name or setting.name
    flag = "--" + dest.replace("_", "-")
    help_text = f"{setting.help} [env: {setting.env}"
    default = _default_text(setting)
    if default is not None:
        help_text += f"; default: {default}"
    help_text += "]"
    hidden = name is not None
    if setting.kind == "bool":
        if setting.default is True:
            return click.option(f"{flag}/--no-{flag[2:]}", dest, default=None, help=help_text, hidden=hidden)
        return click.option(flag, dest, is_flag=True, default=None, help=help_text, hidden=hidden)
    metavar = "TEXT" if setting.kind == "str" else setting.kind.upper()
    if setting.kind == "list":  # repeatable, and each value may hold several, comma-separated
        # One at a time reads best in the singular: --source a=… --source b=…, --cors-origin …
        singular = [flag[:-1]] if flag.endswith("s") and name is None else []
        return click.option(
            flag,
            *singular,
            dest,
            type=click.STRING,
            metavar="TEXT",
            multiple=True,
            help=help_text,
            hidden=hidden,
        )
    return click.option(
        flag, dest, type=click.STRING, metavar=metavar, default=None, help=help_text, hidden=hidden
    )


def server_options(fn: Any) -> Any:
    for setting in reversed(SETTINGS):
        if setting.name not in CLI_EXCLUDED:
            for old in setting.renamed_from:
                fn = _option(setting, old)(fn)
            fn = _option(setting)(fn)
    return fn


def fail(message: str) -> None:
    click.echo(f"stemtrace: {message}", err=True)
    sys.exit(2)


def run_server(**given: Any) -> None:
    try:
        import fastapi  # noqa: F401
        import uvicorn
    except ImportError:
        click.echo(INSTALL_HINT, err=True)
        sys.exit(1)
    try:
        # A repeatable flag given no value is not given; given several times, it is one list.
        given = {
            k: (",".join(v) if isinstance(v, tuple) else v) for k, v in given.items() if v not in (None, ())
        }
        settings = ServerSettings.build(**given)
    except SettingsError as exc:
        fail(str(exc).replace("\n", "\nstemtrace: "))
        return
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if not is_loopback(settings.host) and not settings.auth_enabled:
        if not settings.insecure_no_auth:
            fail(
                f"refusing to listen on {settings.host} without authentication: set --auth-user with "
                "--auth-password-hash (or STEMTRACE_AUTH_PASSWORD), or --auth-tokens; or pass --insecure-no-auth"  # noqa: E501
            )
        click.echo(
            f"WARNING: listening on {settings.host} with NO authentication: anyone who can reach it sees your task "  # noqa: E501
            "arguments and results.",
            err=True,
        )
    from stemtrace.server.app import create_app
    from stemtrace.server.source import SourceError, event_sources, subscription_group
    from stemtrace.server.store import StoreError, open_store
    from stemtrace.server.tuning import quiet_gc, short_gil_switches
    from stemtrace.transport import mask_url, resolve

    try:
        store = open_store(settings.store_url)
    except StoreError as exc:
        fail(str(exc))
        return
    sources = []
    if settings.ingest:
        try:
            sources = event_sources(settings)
        except SourceError as exc:
            fail(str(exc))
        if not sources:
            fail(
                "no event source: pass --app MODULE:APP, --broker URL, --events-url URL or --source NAME=URL "
                "(or --no-ingest)"
            )
        for source in sources:
            try:
                # Declares the store's own subscription (queue, group) before anything else runs.
                group = subscription_group(settings, store)
                resolve(source.config).consumer(group, "stemtrace-startup-check").close()
            except ImportError as exc:
                # A missing client library is an install problem, not an unreachable broker.
                fail(missing_module_message(exc, mask_url(source.config.url)))
            except Exception as exc:
                fail(
                    f"cannot reach the event broker {mask_url(source.config.url)} ({type(exc).__name__}: "
                    f"{mask_url(str(exc))[:120]}); check it is running and the URL is right"
                )
    events = sources[0].config if len(sources) == 1 and not sources[0].label else None

    from stemtrace.server.ingest_process import separate

    # ``auto`` means a process of its own for ingest here, on 2+ CPUs; an app that mounts the
    # server (``create_app``) keeps ingest in its process unless told ``separate``.
    # Several labelled sources ingest in this process (one loop each).
    settings = settings.with_(
        ingest_process="separate" if events is not None and separate(settings) else "same"
    )
    app = create_app(settings, store=store, events=events)
    short_gil_switches()
    quiet_gc()
    root = settings.root
    click.echo(f"stemtrace {_version()} listening on http://{_host(settings.host)}:{settings.port}{root}/")
    if not sources:
        click.echo("  events:    not consumed (--no-ingest)")
    for source in sources:
        named = f"{source.label}: " if source.label else ""
        click.echo(f"  events:    {named}{mask_url(source.config.url)} ({source.config.name})")
        subscription = resolve(source.config).subscription_name(subscription_group(settings, store))
        click.echo(f"  subscription: {subscription}")
        where = "in its own process" if settings.ingest_process == "separate" else "in this process"
        click.echo(f"  ingest:    {where}")
    click.echo(f"  store:     {store.description}")
    click.echo(
        f"  retention: {_days(settings.retention)} ({_days(settings.failure_retention)} for workflows with a failure)"  # noqa: E501
    )
    click.echo(f"  auth:      {'on' if settings.auth_enabled else 'off'}")
    try:
        uvicorn.run(
            app,
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level,
            access_log=False,
            root_path=root,
            proxy_headers=True,
            # Live streams end on the signal (live.close_streams_on_signals); anything else still
            # open after this many seconds is cancelled, so a stop never hangs on a client.
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        )
    finally:
        store.close()


# Import names whose pip distribution differs or needs an extra.
_DISTRIBUTIONS = {"psycopg": "psycopg[binary]", "redis": "redis", "packaging": "packaging", "amqp": "amqp"}


def missing_module_message(exc: ImportError, url: str) -> str:
    """Name the missing module and the pip command that installs it."""
    module = (exc.name or str(exc)).split(".")[0]
    dist = _DISTRIBUTIONS.get(module, module)
    return (
        f"the event broker {url} needs the Python module {module!r}, which is not installed "
        f'({exc}); install it with: pip install "{dist}"  (or reinstall: pip install "stemtrace[server]")'
    )


def _version() -> str:
    from stemtrace import __version__

    return __version__


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _days(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
