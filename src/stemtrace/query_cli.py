"""``stemtrace tasks``, ``show``, ``workflow`` and ``tail``: a running server's API from the terminal.

Read-only, like the server. Each command takes ``--server`` (``STEMTRACE_SERVER_URL``), a bearer
token (``STEMTRACE_API_TOKEN``) or a user and password (``STEMTRACE_API_USER``,
``STEMTRACE_API_PASSWORD``), and ``--json`` for the API's own JSON, one document per line, which
is what scripts and coding assistants should read.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any

import click

from stemtrace import query_render as render
from stemtrace.apiclient import DEFAULT_SERVER, ApiClient, ApiError

STATES = (
    "PENDING",
    "RECEIVED",
    "STARTED",
    "RETRY",
    "SUCCESS",
    "FAILURE",
    "REVOKED",
    "REJECTED",
    "LOST",
    "IGNORED",
)


def api_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The connection options every query command shares, read into one :class:`ApiClient`."""

    @click.option(
        "--server",
        "server_url",
        envvar="STEMTRACE_SERVER_URL",
        default=DEFAULT_SERVER,
        show_default=True,
        help="Base URL of a running stemtrace server (env STEMTRACE_SERVER_URL).",
    )
    @click.option(
        "--token",
        envvar="STEMTRACE_API_TOKEN",
        default=None,
        help="Bearer token, one of the server's --auth-tokens (env STEMTRACE_API_TOKEN).",
    )
    @click.option(
        "--user", envvar="STEMTRACE_API_USER", default=None, help="HTTP basic user (env STEMTRACE_API_USER)."
    )
    @click.option(
        "--password",
        envvar="STEMTRACE_API_PASSWORD",
        default=None,
        help="HTTP basic password (env STEMTRACE_API_PASSWORD).",
    )
    @click.option("--json", "as_json", is_flag=True, help="Print the API's JSON instead of text.")
    @functools.wraps(fn)
    def wrapper(
        server_url: str, token: str | None, user: str | None, password: str | None, **kwargs: Any
    ) -> None:
        client = ApiClient(base_url=server_url, token=token, user=user, password=password)
        try:
            fn(client, **kwargs)
        except ApiError as exc:
            click.echo(f"stemtrace: {exc}", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            sys.exit(130)

    return wrapper  # fmt: skip


def _print_json(value: Any) -> None:
    click.echo(json.dumps(value, separators=(",", ":"), ensure_ascii=False))


def task_filters(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--state`` and ``--name``, the filters ``tasks`` and ``tail`` share (``states``, ``names``)."""
    fn = click.option("--name", "names", multiple=True, help="Exact task name; repeat for several.")(fn)
    return click.option(
        "--state",
        "states",
        multiple=True,
        type=click.Choice(STATES, case_sensitive=False),
        help="Task state; repeat for several.",
    )(fn)


@click.command("tasks")
@task_filters
@click.option("-q", "--query", "q", default=None, help="Task-id prefix or text in the captured arguments.")
@click.option("--workflow", default=None, help="Only the tasks of this workflow (its id or any member's id).")
@click.option(
    "--exception-type",
    "exception_types",
    multiple=True,
    help="Exact exception type, e.g. builtins.ValueError.",
)
@click.option("--beat", default=None, help="Only the runs of this celery beat schedule entry (its name).")
@click.option(
    "--source", default=None, help="Only the tasks of this event source (the server's --source NAME)."
)
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000), help="How many tasks.")
@click.option("--cursor", default=None, help="Continue after a previous page (its next_cursor).")
@api_options
def tasks(client: ApiClient, *, states: tuple[str, ...], names: tuple[str, ...], q: str | None,
          workflow: str | None, exception_types: tuple[str, ...], beat: str | None, source: str | None,
          limit: int,
          cursor: str | None, as_json: bool) -> None:  # fmt: skip
    """List tasks, newest first, with the filters of the Tasks page."""
    page = client.get("/api/tasks", {
        "state": [s.upper() for s in states], "name": list(names), "q": q, "workflow": workflow,
        "exception_type": list(exception_types), "beat": beat, "source": source, "limit": limit,
        "cursor": cursor,
    })  # fmt: skip
    if as_json:
        _print_json(page)
        return
    if not page["items"]:
        click.echo(
            "no task matches"
            + (" on this page; more: --cursor " + page["next_cursor"] if page.get("next_cursor") else "")
        )
        return
    for line in render.task_table(page["items"]):
        click.echo(line)
    if page.get("next_cursor"):
        click.echo(f"… more: --cursor {page['next_cursor']}")


@click.command("show")
@click.argument("task_id")
@api_options
def show(client: ApiClient, *, task_id: str, as_json: bool) -> None:
    """One task: attempts with their waits, traceback, and its place in its workflow."""
    task = client.get(f"/api/tasks/{_path(task_id)}")
    graph = None
    if task.get("workflow_id"):
        try:
            graph = client.get(f"/api/workflows/{_path(task['workflow_id'])}")
        except ApiError:
            graph = None  # the task alone is still worth showing
    if as_json:
        _print_json({"task": task, "workflow": graph})
        return
    for line in render.task_detail(task, graph):
        click.echo(line)


@click.command("workflow")
@click.argument("workflow_id")
@api_options
def workflow(client: ApiClient, *, workflow_id: str, as_json: bool) -> None:
    """A workflow's canvas as an indented tree with each task's state (any member's id works)."""
    graph = client.get(f"/api/workflows/{_path(workflow_id)}")
    if as_json:
        _print_json(graph)
        return
    for line in render.workflow_tree(graph):
        click.echo(line)


@click.command("tail")
@task_filters
@click.option("--workflow", default=None, help="Only the tasks of this workflow.")
@api_options
def tail(client: ApiClient, *, states: tuple[str, ...], names: tuple[str, ...], workflow: str | None,
         as_json: bool) -> None:  # fmt: skip
    """Follow task changes live (the server's change stream) until Ctrl-C."""
    wanted = [s.upper() for s in states]
    for message in client.stream("/api/stream", {"topics": "tasks", "workflow": workflow}):
        for task_id in message.get("tasks", [])[:200]:
            try:
                task = client.get(f"/api/tasks/{_path(task_id)}")
            except ApiError:
                continue  # expired or not visible: nothing to show
            if not render.matches(task, wanted, names):
                continue
            if as_json:
                _print_json({k: v for k, v in task.items() if k not in ("events", "attempts")})
            else:
                click.echo(render.tail_line(task))


def _path(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")


COMMANDS = (tasks, show, workflow, tail)
