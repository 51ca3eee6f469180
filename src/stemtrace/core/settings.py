"""One settings mechanism for the library and the server: the row type, the grammars, the resolver.

Each half keeps its own table of :class:`Setting` rows (``stemtrace.capture.config.SETTINGS`` for
``stemtrace.init``, ``stemtrace.server.settings.SETTINGS`` for ``stemtrace server``); both are read by
:func:`resolve`, so ``STEMTRACE_RETENTION=2w`` means the same kind of value to both halves, and an
error always names where the bad value came from (``STEMTRACE_X``, ``--x`` or the ``init`` option).

What the halves do with an error differs on purpose, so it is not decided here: the library logs
it and falls back (configuration must never break the user's process), the server refuses to
start. Pure: the environment arrives as a mapping, nothing is read or logged here.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

KINDS = ("str", "int", "float", "bool", "duration", "list", "json", "callable")
ENV_PREFIX = "STEMTRACE_"

# -- grammars ------------------------------------------------------------------------------------

_UNITS: dict[str, float] = {"w": 604800.0, "d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"
_BARE = re.compile(rf"{_NUMBER}")
_PART = re.compile(rf"({_NUMBER})(ms|[wdhms])")
DURATION_FORM = (
    "a number of seconds, or a number with a unit ms, s, m, h, d or w "
    "(500ms, 30s, 5m, 2h, 7d, 2w; parts may combine, largest first: 1h30m)"
)
BOOL_FORM = "one of 1/0, true/false, yes/no, on/off"
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def parse_duration(text: str) -> float:
    """Seconds in ``text``: ``500ms``, ``30s``, ``5m``, ``2h``, ``7d``, ``2w``, ``1h30m`` or ``90``.

    Units are lower case (``M`` is not minutes to everyone). Parts of a combination come largest
    first, each unit once, so ``1h30m`` reads one way only; whitespace between parts is ignored.
    """
    compact = "".join(text.split())
    if _BARE.fullmatch(compact):
        return float(compact)
    total, pos, last = 0.0, 0, float("inf")
    for match in _PART.finditer(compact):
        size = _UNITS[match.group(2)]
        if match.start() != pos or size >= last:
            break
        total, pos, last = total + float(match.group(1)) * size, match.end(), size
    if compact and pos == len(compact):
        return total
    raise ValueError(f"not a duration; use {DURATION_FORM}")


def format_duration(seconds: float) -> str:
    """The shortest text :func:`parse_duration` reads back as ``seconds`` (``7d``, ``200ms``, ``90s``)."""
    for unit in ("d", "h", "m", "s"):  # weeks are read, not written: 7d is clearer than 1w
        size = _UNITS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    if seconds < 1 and round(seconds * 1000, 6) % 1 == 0:
        return f"{round(seconds * 1000)}ms"
    text = repr(float(seconds))  # the shortest text that reads back as the same float
    if "e" in text:
        text = f"{seconds:.9f}".rstrip("0").rstrip(".")
    return text.removesuffix(".0") + "s"


def parse_bool(text: str) -> bool:
    low = text.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError(f"not a boolean; use {BOOL_FORM}")


def split_list(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


# -- the row ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Setting:
    """One option: its name in code, ``STEMTRACE_<NAME>`` in the environment, ``--name`` as a flag.

    ``renamed_from`` lists earlier names still read (option, flag and variable), each use logged as
    deprecated. ``minimum`` rejects numbers below it. ``normalize`` turns a parsed value into the
    shape the code wants (and raises ``ValueError``/``TypeError`` for a value of the wrong shape).
    """

    name: str
    kind: str
    default: Any
    help: str
    secret: bool = False
    env_only: bool = False
    renamed_from: tuple[str, ...] = ()
    minimum: float | None = None
    normalize: Callable[[Any], Any] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"setting {self.name}: unknown kind {self.kind!r}")

    @property
    def env(self) -> str | None:
        """The environment variable; a callable has none (it cannot be written as text)."""
        return None if self.kind == "callable" else env_name(self.name)

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def form(self) -> str:
        """What a valid value looks like, for error messages."""
        return {
            "int": "a whole number",
            "float": "a number",
            "bool": BOOL_FORM,
            "duration": DURATION_FORM,
            "list": "comma-separated values",
            "json": "JSON",
            "callable": "a function",
        }.get(self.kind, "text")

    def parse(self, text: str) -> Any:
        """A value written as text (an environment variable, a flag) in the setting's type."""
        kind = self.kind
        if kind == "bool":
            value: Any = parse_bool(text)
        elif kind in ("int", "float"):
            try:
                value = int(text.strip()) if kind == "int" else float(text.strip())
            except ValueError:
                raise ValueError(f"not {self.form}") from None
        elif kind == "duration":
            value = parse_duration(text)
        elif kind == "list":
            value = split_list(text)
        elif kind == "json":
            try:
                value = json.loads(text)
            except ValueError:
                raise ValueError("not JSON") from None
        elif kind == "callable":
            raise ValueError("a function cannot be given as text")
        else:
            value = text
        return self._finish(value)

    def coerce(self, value: Any) -> Any:
        """A value given in code: text is parsed as above, except that a list takes it as one item."""
        kind = self.kind
        if value is None:
            return None
        if isinstance(value, str) and kind not in ("str", "list"):
            return self.parse(value)
        if kind == "bool" and isinstance(value, (bool, int)):
            value = bool(value)
        elif kind == "int" and isinstance(value, int) and not isinstance(value, bool):
            pass
        elif (
            kind in ("float", "duration") and isinstance(value, (int, float)) and not isinstance(value, bool)
        ):
            value = float(value)
        elif kind == "list" and isinstance(value, (str, list, tuple, set, frozenset)):
            value = (value,) if isinstance(value, str) else tuple(value)
        elif kind == "str":
            value = str(value)
        elif kind == "json" or (kind == "callable" and callable(value)):
            pass
        else:
            raise ValueError(f"a {type(value).__name__} is not {self.form}")  # the value may be secret
        return self._finish(value)

    def _finish(self, value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"not {self.form}")
        if self.minimum is not None and value < self.minimum:
            raise ValueError(f"below the minimum {self.minimum:g}")
        return self.normalize(value) if self.normalize is not None else value


def env_name(name: str) -> str:
    return ENV_PREFIX + name.upper()


# -- resolution ------------------------------------------------------------------------------------


class SettingError(ValueError):
    """A bad value, naming where it came from and what is accepted."""

    def __init__(
        self, source: str, raw: object, setting: Setting | None, reason: str, name: str | None = None
    ) -> None:
        shown = "(hidden)" if setting is not None and setting.secret else repr(raw)
        says_form = setting is None or setting.kind == "str" or setting.form in reason or "use " in reason
        accepted = "" if says_form or setting is None else f"; expected {setting.form}"
        super().__init__(f"{source}={shown}: {reason}{accepted}")
        self.source = source
        self.setting = setting
        self.name = setting.name if setting is not None else name


@dataclass
class Resolved:
    """What :func:`resolve` found: typed values, the bad ones, deprecated names used, and which
    settings were set explicitly (in code, on the command line or in the environment)."""

    values: dict[str, Any]
    errors: list[SettingError] = field(default_factory=list)
    deprecations: list[str] = field(default_factory=list)
    explicit: set[str] = field(default_factory=set)


def resolve(
    table: Iterable[Setting],
    given: Mapping[str, Any],
    environ: Mapping[str, str],
    *,
    environment_wins: bool,
    given_label: Callable[[str], str],
    given_is_text: bool = False,
) -> Resolved:
    """Every setting's value from ``given`` (code or flags), ``environ`` and the defaults.

    ``environment_wins`` puts the environment before ``given`` (the library: an operator overrides
    the code without a deploy); otherwise ``given`` comes first (the server: a flag beats the
    environment). A bad value is recorded and the next source is tried, down to the default.
    An empty variable counts as unset. ``given_label(name)`` says how ``given`` names an option in
    messages (``--retention``, or ``stemtrace.init option retention``).
    """
    rows = tuple(table)
    known = {s.name for s in rows} | {old for s in rows for old in s.renamed_from}
    out = Resolved(values={})
    for name in sorted(set(given) - known):
        out.errors.append(SettingError(given_label(name), given[name], None, "unknown option", name))
    for setting in rows:
        candidates = _candidates(
            setting,
            given=given,
            environ=environ,
            environment_wins=environment_wins,
            given_label=given_label,
            out=out,
        )
        value: Any = None
        found = False
        for source, raw, is_text in candidates:
            try:
                value = (
                    setting.parse(raw)
                    if is_text or (given_is_text and isinstance(raw, str))
                    else setting.coerce(raw)
                )
            except (ValueError, TypeError) as exc:
                out.errors.append(SettingError(source, raw, setting, str(exc) or type(exc).__name__))
                continue
            found = True
            out.explicit.add(setting.name)
            break
        out.values[setting.name] = value if found else setting.coerce(setting.default)
    return out


def _candidates(
    setting: Setting,
    *,
    given: Mapping[str, Any],
    environ: Mapping[str, str],
    environment_wins: bool,
    given_label: Callable[[str], str],
    out: Resolved,
) -> list[tuple[str, Any, bool]]:
    """``(source, raw value, is text)`` in the order they are tried; notes deprecated names used."""
    coded: list[tuple[str, Any, bool]] = []
    env: list[tuple[str, Any, bool]] = []
    for name in (setting.name, *setting.renamed_from):
        if given.get(name) is not None:
            coded.append((given_label(name), given[name], False))
            if name != setting.name:
                out.deprecations.append(f"{given_label(name)} is deprecated: use {given_label(setting.name)}")
        var = env_name(name) if setting.env else None
        if var is not None and environ.get(var, "").strip():
            env.append((var, environ[var], True))
            if name != setting.name:
                out.deprecations.append(f"{var} is deprecated: use {setting.env}")
    return env + coded if environment_wins else coded + env


def environment_of(table: Iterable[Setting]) -> dict[str, Setting]:
    """Every variable the table reads (current names and renamed ones) and its setting."""
    found: dict[str, Setting] = {}
    for setting in table:
        if setting.env:
            for name in (setting.name, *setting.renamed_from):
                found[env_name(name)] = setting
    return found
