"""The ``stemtrace demo`` command (registered on the main CLI in ``stemtrace.cli``)."""

from __future__ import annotations

import sys

import click


@click.command("demo")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=7373, show_default=True, type=click.IntRange(1, 65535), help="Port.")
@click.option(
    "--rate",
    default=20.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Workflows started per minute, after a first round of every kind.",
)
@click.option("--open/--no-open", "open_browser", default=True, help="Open the UI in a browser.")
@click.option(
    "--duration",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Stop by itself after this many seconds.",
)
@click.option("--store", default=None, help="Database URL (default: a temporary SQLite file).")
@click.option("--verbose", is_flag=True, help="Show the worker's and the server's logs.")
def demo(
    *,
    host: str,
    port: int,
    rate: float,
    open_browser: bool,
    duration: float | None,
    store: str | None,
    verbose: bool,
) -> None:
    """Run a live demo: an embedded Celery app and worker, the event transport and the server.

    No broker and no database needed. Press Ctrl-C to stop.
    """
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        click.echo('stemtrace demo needs the server extra: pip install "stemtrace[server]"', err=True)
        sys.exit(1)
    from stemtrace.demo.runner import DemoOptions, run

    code = run(
        DemoOptions(
            host=host,
            port=port,
            rate=rate,
            open_browser=open_browser,
            duration=duration,
            store=store,
            verbose=verbose,
        )
    )
    sys.exit(code)
