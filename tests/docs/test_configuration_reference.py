"""The configuration reference is generated from the two settings tables and cannot go stale.

``docs/hooks/settings_reference.py`` renders ``stemtrace.capture.config.SETTINGS`` and
``stemtrace.server.settings.SETTINGS`` into the marked blocks of ``docs/configuration*.md`` (while
mkdocs builds, and into the committed files when run as a script). These tests fail when a
committed page differs from what the tables say; run ``python docs/hooks/settings_reference.py``.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from stemtrace.capture import config as library
from stemtrace.core.settings import env_name
from stemtrace.server import settings as server

ROOT = Path(__file__).resolve().parents[2]
HOOK = ROOT / "docs" / "hooks" / "settings_reference.py"
PAGES = ("configuration.md", "configuration-library.md", "configuration-server.md")

# Names both halves read must mean the same thing to both; list such a name here, with why.
SAME_MEANING: set[str] = set()


def _hook() -> ModuleType:
    spec = importlib.util.spec_from_file_location("stemtrace_docs_settings_hook", HOOK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _page(name: str) -> str:
    return (ROOT / "docs" / name).read_text(encoding="utf-8")


def _block(name: str, kind: str) -> str:
    text = _page(name)
    start, end = f"<!-- settings:{kind}:start -->\n", f"<!-- settings:{kind}:end -->"
    assert start in text and end in text, f"docs/{name} lost its {kind} block"
    return text[text.index(start) + len(start) : text.index(end)]


@pytest.mark.parametrize("page", PAGES)
def test_committed_page_is_what_the_tables_say(page: str) -> None:
    text = _page(page)
    assert _hook().fill(text) == text, f"docs/{page} is stale: run python docs/hooks/settings_reference.py"


def test_the_script_agrees() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}  # this checkout's tables, whatever is installed
    proc = subprocess.run(
        [sys.executable, str(HOOK), "--check"], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr


def test_a_stale_block_is_rendered_afresh_and_an_unknown_one_is_an_error() -> None:
    hook = _hook()
    stale = "# x\n<!-- settings:server:start -->\n| old |\n<!-- settings:server:end -->\n"
    out = hook.on_page_markdown(stale, None, None, None)
    assert "| old |" not in out and "`--retention`" in out
    assert hook.on_page_markdown("no block", None, None, None) == "no block"
    with pytest.raises(ValueError, match="colour"):
        hook.fill("<!-- settings:colour:start -->\n<!-- settings:colour:end -->")


def _rows(text: str) -> dict[str, list[str]]:
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        match = re.fullmatch(r"`([^`]+)`|\(environment only\)", cells[0])
        if match and not line.startswith("|---"):
            rows[cells[1] if match.group(1) is None else match.group(1)] = cells
    return rows


def test_every_library_option_is_listed_with_its_variable() -> None:
    rows = _rows(_block("configuration-library.md", "library"))
    assert list(rows) == [s.name for s in library.SETTINGS]
    for s in library.SETTINGS:
        assert rows[s.name][3] == (f"`{s.env}`" if s.env else "(code only)")
        assert rows[s.name][2] == _hook().default_text(s)


def test_every_server_flag_is_listed_with_its_variable() -> None:
    rows = _rows(_block("configuration-server.md", "server"))
    assert len(rows) == len(server.SETTINGS)
    for s in server.SETTINGS:
        key = f"`{s.env}`" if s.env_only else s.flag
        assert rows[key][1] == f"`{s.env}`", s.name


def test_the_overview_lists_every_variable_either_half_reads() -> None:
    rows = _rows(_block("configuration.md", "environment"))
    read = {
        env_name(n) for s in (*library.SETTINGS, *server.SETTINGS) if s.env for n in (s.name, *s.renamed_from)
    }
    assert set(rows) == read
    for s in library.SETTINGS:
        if s.env is not None:
            assert rows[s.env][1] == f"`{s.name}`"
    for s in server.SETTINGS:
        assert s.env is not None
        assert rows[s.env][2] == ("(environment only)" if s.env_only else f"`{s.flag}`")


def test_no_name_means_two_things() -> None:
    """The issue's three collisions, and any new one: both halves reading a name for different uses."""
    lib = {s.env for s in library.SETTINGS if s.env}
    srv = {s.env for s in server.SETTINGS}
    assert lib & srv == SAME_MEANING


def test_every_renamed_name_is_in_the_renamed_table() -> None:
    table = _block("configuration.md", "renamed")
    olds = [(s, old) for s in (*library.SETTINGS, *server.SETTINGS) for old in s.renamed_from]
    assert olds, "the renamed table is empty"
    for s, old in olds:
        assert f"`{env_name(old)}`" in table and f"`{s.env}`" in table


def test_library_options_without_a_variable_are_named() -> None:
    text = _page("configuration.md")
    for setting in library.SETTINGS:
        if setting.env is None:
            assert f"`{setting.name}`" in text, f"say that {setting.name} has no environment variable"
