"""The demo's options table in getting-started.md matches the ``stemtrace demo`` command."""

from __future__ import annotations

import re
from pathlib import Path

import click

from stemtrace.demo.cli import demo

DOC = Path(__file__).resolve().parents[2] / "docs" / "getting-started.md"


def test_every_demo_option_is_documented_with_its_default() -> None:
    row = re.compile(r"^\| `(--[a-z-]+)` \| ([^|]+) \|", flags=re.MULTILINE)
    rows = dict(row.findall(DOC.read_text(encoding="utf-8")))
    documented = set(rows)
    actual: set[str] = set()
    for param in demo.params:
        if not isinstance(param, click.Option):
            continue
        flag = param.secondary_opts[0] if param.secondary_opts else param.opts[0]  # --no-open, not --open
        actual.add(flag)
        if isinstance(param.default, (int, float)) and not isinstance(param.default, bool):
            assert rows.get(flag, "").strip(" `") == f"{param.default:g}", flag
    assert documented == actual
