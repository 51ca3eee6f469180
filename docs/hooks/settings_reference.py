"""The configuration reference, generated from the two settings tables.

``docs/configuration-library.md``, ``docs/configuration-server.md`` and ``docs/configuration.md``
hold their tables between ``<!-- settings:KIND:start -->`` and ``<!-- settings:KIND:end -->``.
The text there is committed (so the pages read well on GitHub too) and rendered here from
``stemtrace.capture.config.SETTINGS`` and ``stemtrace.server.settings.SETTINGS``:

* as a mkdocs hook, it replaces the marked text while the site builds, so the site is always true;
* ``python docs/hooks/settings_reference.py`` rewrites the committed pages after a table changed;
  ``--check`` exits 1 when they are stale (``tests/docs/test_configuration_reference.py`` does too).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterable
from typing import Any

from stemtrace.capture.config import SETTINGS as LIBRARY
from stemtrace.core.settings import Setting, env_name, format_duration
from stemtrace.server.settings import SETTINGS as SERVER

PAGES = {
    "library": os.path.join("docs", "configuration-library.md"),
    "server": os.path.join("docs", "configuration-server.md"),
    "environment": os.path.join("docs", "configuration.md"),
    "renamed": os.path.join("docs", "configuration.md"),
}
_BLOCK = re.compile(r"(<!-- settings:(\w+):start -->\n)(.*?)(<!-- settings:\2:end -->)", re.S)


def _cell(text: object) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def default_text(setting: Setting) -> str:
    value = setting.coerce(setting.default)
    if value is None or value in ((), {}, ""):
        return "—"
    if setting.kind == "duration":
        return f"`{format_duration(value)}`"
    if setting.kind == "bool":
        return f"`{str(value).lower()}`"
    if setting.kind == "list":
        return f"`{','.join(value)}`"
    return f"`{value}`"


def _renamed_note(setting: Setting, as_flag: bool) -> str:
    if not setting.renamed_from:
        return ""
    olds = ", ".join(
        f"`{'--' + old.replace('_', '-') if as_flag else old}` / `{env_name(old)}`"
        for old in setting.renamed_from
    )
    return f" Formerly {olds}, still read with a deprecation warning."


def library_table() -> str:
    lines = [
        "| option | type | default | environment variable | meaning |",
        "|---|---|---|---|---|",
    ]
    for s in LIBRARY:
        env = f"`{s.env}`" if s.env else "(code only)"
        meaning = _cell(s.help + _renamed_note(s, as_flag=False))
        lines.append(f"| `{s.name}` | {s.kind} | {default_text(s)} | {env} | {meaning} |")
    return "\n".join(lines) + "\n"


def server_table() -> str:
    lines = ["| flag | environment variable | type | default | meaning |", "|---|---|---|---|---|"]
    for s in SERVER:
        flag = "(environment only)" if s.env_only else f"`{s.flag}`"
        meaning = _cell(s.help + _renamed_note(s, as_flag=True))
        lines.append(f"| {flag} | `{s.env}` | {s.kind} | {default_text(s)} | {meaning} |")
    return "\n".join(lines) + "\n"


def _readers(table: Iterable[Setting]) -> dict[str, tuple[Setting, str | None]]:
    """Variable -> (its setting, the old name it stands for, if it is a renamed one)."""
    found: dict[str, tuple[Setting, str | None]] = {}
    for s in table:
        if s.env:
            found[s.env] = (s, None)
            for old in s.renamed_from:
                found[env_name(old)] = (s, old)
    return found


def environment_table() -> str:
    """Every variable either half reads, with what each half makes of it."""
    library, server = _readers(LIBRARY), _readers(SERVER)
    lines = ["| variable | library option | server flag | what it sets |", "|---|---|---|---|"]
    for env in sorted(set(library) | set(server)):
        lib, srv = library.get(env), server.get(env)
        meanings = [
            f"{half}: {found[0].help}" if both else found[0].help
            for half, found, both in (
                ("library", lib, _current(srv)),
                ("server", srv, _current(lib)),
            )
            if found is not None and found[1] is None
        ] or ["renamed: see the new name"]
        cells = (
            _reader_cell(lib, lambda s: f"`{s.name}`"),
            _reader_cell(srv, lambda s: "(environment only)" if s.env_only else f"`{s.flag}`"),
        )
        lines.append(f"| `{env}` | {cells[0]} | {cells[1]} | {_cell(' '.join(meanings))} |")
    return "\n".join(lines) + "\n"


def _current(found: tuple[Setting, str | None] | None) -> bool:
    return found is not None and found[1] is None


def _reader_cell(found: tuple[Setting, str | None] | None, show: Callable[[Setting], str]) -> str:
    if found is None:
        return "—"
    setting, old = found
    return show(setting) if old is None else f"deprecated name of {show(setting)}"


def renamed_table() -> str:
    lines = ["| old name | new name | half |", "|---|---|---|"]
    for half, table, as_flag in (("library", LIBRARY, False), ("server", SERVER, True)):
        for s in table:
            for old in s.renamed_from:
                if as_flag:
                    names = f"`--{old.replace('_', '-')}`, `{env_name(old)}`", f"`{s.flag}`, `{s.env}`"
                else:
                    names = f"`{old}`, `{env_name(old)}`", f"`{s.name}`, `{s.env}`"
                lines.append(f"| {names[0]} | {names[1]} | {half} |")
    return "\n".join(lines) + "\n"


RENDER: dict[str, Callable[[], str]] = {
    "library": library_table,
    "server": server_table,
    "environment": environment_table,
    "renamed": renamed_table,
}


def fill(text: str) -> str:
    """``text`` with every marked block rendered afresh; an unknown block name is an error."""

    def one(match: re.Match[str]) -> str:
        kind = match.group(2)
        if kind not in RENDER:
            raise ValueError(f"unknown settings block {kind!r}; known: {', '.join(RENDER)}")
        return match.group(1) + RENDER[kind]() + match.group(4)

    return _BLOCK.sub(one, text)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """mkdocs hook: pages with a settings block get it from the tables, not from the file."""
    return fill(markdown) if "<!-- settings:" in markdown else markdown


def stale_pages(root: str) -> list[str]:
    return [
        path
        for path in sorted(set(PAGES.values()))
        if _read(os.path.join(root, path)) != fill(_read(os.path.join(root, path)))
    ]


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def main(argv: list[str]) -> int:
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    stale = stale_pages(root)
    if "--check" in argv:
        for path in stale:
            print(f"{path} is stale: run python docs/hooks/settings_reference.py", file=sys.stderr)
        return 1 if stale else 0
    for path in stale:
        full = os.path.join(root, path)
        text = fill(_read(full))  # read whole before the file is opened for writing
        with open(full, "w", encoding="utf-8") as handle:
            handle.write(text)
        print(f"rewrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
