"""Full-text search of tasks: the document each task row carries, the index over it, and ``q``.

Each task row's ``args_text`` column holds its *search document*: the words of its arguments
(or their ``argsrepr``/``kwargsrepr``), its result, its exception type and message, its
attempts' trace and Sentry ids (``core.tracing``), with every
run of other characters turned into one space (``document``). Both engines index that one
column, so what counts as a word is decided once, here, not by two tokenizers:

- SQLite: an FTS5 table with external content on ``tasks`` (rowid = the task row's rowid),
  kept in step by triggers on ``tasks``; every writer (ingest, ``mark_lost``, retention's
  deletes) is covered without calling anything.
- PostgreSQL: a GIN index on ``to_tsvector('simple', args_text)``; the ``simple``
  configuration lowercases and neither stems nor drops stop words (arguments are identifiers
  and values, not prose). See docs/adr/0011-full-text-search.md.

``q`` syntax (``parse``): bare words (all must match), ``"a phrase"``, ``key=value`` (a keyword
argument whose value is that string or that JSON text), ``-word``/``-"phrase"`` (excluded). A
``q`` that is one bare word also matches the tasks whose id starts with it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from stemtrace.core.jsontext import dumps as std_dumps
from stemtrace.core.model import TaskRecord
from stemtrace.server.jsonfast import fast_dumps
from stemtrace.server.store.body import load_record
from stemtrace.server.store.db import Dialect

# What the document keeps of each part (bytes of UTF-8): arguments as before, plus what the
# task returned or raised. The text is for finding a task, the detail keeps the values.
ARGS_MAX = 4000
RESULT_MAX = 2000
EXCEPTION_MAX = 1000
# ``q`` is at most 4,096 characters (the API's limit); past this many terms it is no search.
TERMS_MAX = 32
_SPACES = bytes.maketrans(
    bytes(b for b in range(128) if not chr(b).isalnum()), b" " * sum(not chr(b).isalnum() for b in range(128))
)
_ESCAPE = re.compile(rb"\\(?:u[0-9A-Fa-f]{4}|.)")
# A term: ``-``?, then ``key=value`` (value quoted or not), ``"a phrase"`` (closing quote
# optional) or a word.
_TOKEN = re.compile(r'(-?)(?:([A-Za-z_][A-Za-z0-9_]*)=(?:"([^"]*)"?|([^\s"]*))|"([^"]*)"?|([^\s"]+))')
_ID_PREFIX = re.compile(r"^[0-9A-Za-z_.:-]+$")


def words(text: str) -> str:
    """``text``'s words (runs of letters and digits) separated by single spaces."""
    return _words(text.encode("utf-8", "replace"))


def _words(raw: bytes) -> str:
    # Every ASCII byte but a letter or digit becomes a space (``bytes.translate``: ~0.2 us a
    # task where a regular expression took 5); other punctuation is left to the engines'
    # tokenizers, which both split on it.
    return b" ".join(raw.translate(_SPACES).split()).decode("utf-8", "ignore")


def _json(value: Any, limit: int) -> bytes:
    text = fast_dumps(value)
    raw = (std_dumps(value) if text is None else text).encode("utf-8", "replace")[:limit]
    if b"\\" in raw:  # JSON's escapes are separators: "line one\\nline two" has "two", not "nline"
        raw = _ESCAPE.sub(b" ", raw)
    return raw


def document(record: TaskRecord, extra: Mapping[str, Any]) -> str | None:
    """The search document of a task (see the module docstring); ``None`` when it has no words.

    ``extra`` holds the ``args_repr``/``kwargs_repr`` the sender set, if any: they stand for
    the arguments, which then may hold what the sender meant to hide. Values go through their
    JSON text (orjson) and one byte translation: ~1 us a task, where walking the values in
    Python took 10.
    """
    parts: list[bytes] = []
    if "args_repr" in extra or "kwargs_repr" in extra:
        text = f"{extra.get('args_repr') or ''} {extra.get('kwargs_repr') or ''}"
        parts.append(text.encode("utf-8", "replace")[:ARGS_MAX])
    elif record.args is not None or record.kwargs is not None:
        parts.append(_json([record.args, record.kwargs], ARGS_MAX))
    if record.result is not None:
        parts.append(_json(record.result, RESULT_MAX))
    if record.exception_type:
        parts.append(record.exception_type.encode("utf-8", "replace")[:200])
    if record.exception:
        parts.append(record.exception.encode("utf-8", "replace")[:EXCEPTION_MAX])
    for a in record.attempts:  # a trace or Sentry event id pasted into the search box finds its task
        ids = [i for i in (a.trace_id, a.sentry_trace_id, a.sentry_event_id) if i]
        if ids:
            parts.append(" ".join(ids).encode())
    return _words(b" ".join(parts)) or None


# -- the query ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Search:
    """A parsed ``q``: phrases are ``words()`` texts (one word is a phrase of one)."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    kwargs: tuple[tuple[str, str], ...] = ()  # key=value, each also in ``include`` as a phrase
    id_prefix: str | None = None

    @property
    def text(self) -> bool:
        return bool(self.include or self.exclude)


def parse(q: str) -> Search:
    """``q`` as terms. Never raises: a quote left open runs to the end; a term without a
    letter or digit is dropped (there is no word to look for); the syntax characters of FTS5
    and tsquery are punctuation here, so nothing in ``q`` ever reaches either as syntax."""
    q = q.replace("\x00", " ")
    include: list[str] = []
    exclude: list[str] = []
    kwargs: list[tuple[str, str]] = []
    found = list(_TOKEN.finditer(q))
    for m in found[:TERMS_MAX]:
        negate, key, phrase, word = m.group(1) == "-", m.group(2), m.group(5), m.group(6)
        if key is not None:
            value = m.group(3) if m.group(3) is not None else m.group(4)
            text = words(f"{key} {value}")
            if negate:
                exclude.append(text)
            else:
                kwargs.append((key, value))
                include.append(words(f"{key} {_number_words(value)}"))
            continue
        text = words(phrase if phrase is not None else word)
        if text:
            (exclude if negate else include).append(text)
    one = q.strip()
    single = len(found) == 1 and found[0].group(6) is not None and not found[0].group(1)
    id_prefix = one if single and _ID_PREFIX.match(one) else None
    return Search(tuple(include), tuple(exclude), tuple(kwargs), id_prefix)


def _number_words(value: str) -> str:
    """A number's words as the document spells them for an int or a float of that value
    (``42.0`` -> ``42``, a prefix of the words of both ``42`` and ``42.0``); else ``value``."""
    try:
        number = float(value)
    except ValueError:
        return value
    if number.is_integer() and abs(number) < 1e15:
        return str(int(number))
    return "" if math.isnan(number) else value


def kwargs_match(ids: Sequence[Any], detail: bytes, wanted: tuple[tuple[str, str], ...]) -> bool:
    """Whether the stored task detail's kwargs hold every ``key=value``: the value equal to
    the string, or to the JSON value the string spells (``n=42``, ``flag=true``, ``s="x"``)."""
    try:
        kwargs = load_record(ids, detail).get("kwargs")
    except ValueError:
        return False
    if not isinstance(kwargs, Mapping):
        return False
    for key, text in wanted:
        if key not in kwargs:
            return False
        value = kwargs[key]
        if isinstance(value, str) and value == text:
            continue
        try:
            literal = json.loads(text)
        except ValueError:
            return False
        if not _same(literal, value):
            return False
    return True


def _same(a: Any, b: Any) -> bool:
    """JSON equality: ``true`` is not ``1``, ``1`` is ``1.0``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    return type(a) is type(b) and bool(a == b)


# -- SQL ------------------------------------------------------------------------------------------

# PostgreSQL: the indexed expression; a query must spell it exactly so to use the index.
PG_VECTOR = "to_tsvector('simple'::regconfig, args_text)"


def fts_expression(phrases: tuple[str, ...], join: str) -> str:
    """An FTS5 MATCH text: each phrase in double quotes (its words hold no quote), joined."""
    return f" {join} ".join(f'"{p}"' for p in phrases)


def condition(d: Dialect, search: Search) -> tuple[str | None, list[Any]]:
    """The WHERE condition for the search's words on ``tasks`` (``None``: no word to match).

    SQLite's form is a correlated probe of the FTS table for the row; ``sparse_rowids``
    gives the other plan, driven from the index, when the words are rare.
    """
    if not search.text:
        return None, []
    if d.name == "sqlite":
        if search.include:
            text = fts_expression(search.include, "AND")
            for p in search.exclude:
                text += f' NOT "{p}"'
            probe = "EXISTS (SELECT 1 FROM task_search WHERE task_search MATCH ? AND rowid = tasks.rowid)"
            return probe, [text]
        probe = "NOT EXISTS (SELECT 1 FROM task_search WHERE task_search MATCH ? AND rowid = tasks.rowid)"
        return probe, [fts_expression(search.exclude, "OR")]
    parts = ["phraseto_tsquery('simple'::regconfig, ?)"] * len(search.include)
    params: list[Any] = list(search.include)
    if search.include:
        query = " && ".join(parts)
        for p in search.exclude:
            query += " && !!phraseto_tsquery('simple'::regconfig, ?)"
            params.append(p)
        return f"{PG_VECTOR} @@ ({query})", params
    query = " || ".join(["phraseto_tsquery('simple'::regconfig, ?)"] * len(search.exclude))
    return f"NOT COALESCE({PG_VECTOR} @@ ({query}), FALSE)", list(search.exclude)


# -- schema ---------------------------------------------------------------------------------------

_SQLITE = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS task_search USING fts5(args_text, content='tasks', "
    "columnsize=0, tokenize='unicode61 remove_diacritics 0')",
    "CREATE TRIGGER IF NOT EXISTS task_search_insert AFTER INSERT ON tasks WHEN new.args_text IS NOT NULL "
    "BEGIN INSERT INTO task_search (rowid, args_text) VALUES (new.rowid, new.args_text); END",
    "CREATE TRIGGER IF NOT EXISTS task_search_delete AFTER DELETE ON tasks WHEN old.args_text IS NOT NULL "
    "BEGIN INSERT INTO task_search (task_search, rowid, args_text) "
    "VALUES ('delete', old.rowid, old.args_text); END",
    # An upsert rewrites every column; the index changes only when the document does.
    "CREATE TRIGGER IF NOT EXISTS task_search_update AFTER UPDATE OF args_text ON tasks "
    "WHEN old.args_text IS NOT new.args_text BEGIN "
    "INSERT INTO task_search (task_search, rowid, args_text) "
    "SELECT 'delete', old.rowid, old.args_text WHERE old.args_text IS NOT NULL; "
    "INSERT INTO task_search (rowid, args_text) "
    "SELECT new.rowid, new.args_text WHERE new.args_text IS NOT NULL; END",
)
_POSTGRES = (f"CREATE INDEX IF NOT EXISTS tasks_search ON tasks USING gin ({PG_VECTOR})",)


def migrate(conn: Any, dialect: Dialect) -> None:
    """The full-text index (part of the schema's first version, run inside ``schema.migrate``'s
    transaction; its statements differ by engine, and triggers hold ``;``)."""
    for statement in _SQLITE if dialect.name == "sqlite" else _POSTGRES:
        conn.execute(statement)
