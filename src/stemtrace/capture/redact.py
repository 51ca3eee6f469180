"""Redaction: sensitive values never leave the process.

Built-in rules, always on, plus three of the user's, applied before serialization:

* key names (the default list plus ``redact_keys``) at any depth of args,
  kwargs and results, matched case-insensitively as substrings of the key
  (``user_password``, ``X-Auth-Token``): the whole value is masked;
* secrets inside any captured string (arguments, results, reprs, exception
  messages, tracebacks, Celery's ``argsrepr``), by one precompiled regex pass per
  string: ``key=value``, ``key: value`` and ``"key": "value"`` where the key is
  sensitive (``password=hunter2``, ``"api_key": "x"``), HTTP credentials
  (``Authorization: Bearer X``, ``Basic dXNlcjpwdw==``) and the password in a
  URL's user info (``redis://user:pw@host`` keeps ``redis://user:[redacted]@host``);
* positional arguments declared per task name (``redact_args``);
* regular expressions (``redact_patterns``) on the same strings;
* ``redactor(task_name, field, value)`` for anything else.

A redacted value becomes ``"[redacted]"``: visible, never silently dropped.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from stemtrace.core.events import REDACTED


class Redactor:
    """Compiled redaction rules for one process."""

    def __init__(
        self,
        keys: Sequence[str],
        patterns: Sequence[str] = (),
        per_task_args: Mapping[str, Sequence[int]] | None = None,
        hook: Callable[[str | None, str, Any], Any] | None = None,
    ) -> None:
        normalized = sorted({k.lower().replace("-", "_") for k in keys if k})
        self._keys = tuple(normalized)
        self._secret = SecretScanner(normalized)
        self._patterns = tuple(re.compile(p) for p in patterns)
        self._per_task_args = {name: frozenset(idx) for name, idx in (per_task_args or {}).items()}
        self.hook = hook
        self._key_cache: dict[str, bool] = {}

    def is_sensitive_key(self, key: str) -> bool:
        cached = self._key_cache.get(key)
        if cached is None:
            low = key.lower().replace("-", "_")
            cached = any(k in low for k in self._keys)
            if len(self._key_cache) < 4096:
                self._key_cache[key] = cached
        return cached

    def text(self, value: str) -> str:
        """``value`` with the secrets inside it masked (built-in rules, then ``redact_patterns``)."""
        out = self._secret.mask(value)
        for pattern in self._patterns:
            out = pattern.sub(REDACTED, out)
        return out

    def finds_secret(self, value: str) -> bool:
        """Whether :meth:`text` would mask anything in ``value`` by the built-in rules: lets a fast
        path that passes strings through unchanged hand this one to the converter instead."""
        return self._secret.finds(value)

    @property
    def has_patterns(self) -> bool:
        return bool(self._patterns)

    def hides_args(self, task_name: Any) -> bool:
        """True when positional arguments of ``task_name`` are declared to be redacted."""
        return bool(self._per_task_args.get(task_name or ""))

    def args(self, task_name: str | None, args: Sequence[Any]) -> list[Any]:
        """Positional arguments with the declared indices replaced."""
        hidden = self._per_task_args.get(task_name or "")
        if not hidden:
            return list(args)
        return [REDACTED if i in hidden else a for i, a in enumerate(args)]

    def apply_hook(self, task_name: str | None, field: str, value: Any) -> Any:
        if self.hook is None:
            return value
        return self.hook(task_name, field, value)


# What follows a sensitive key: a quoted string, HTTP credentials (scheme and all), or a bare word.
_VALUE = (
    r"""(?P<value>'[^']{0,512}'|"[^"]{0,512}"|(?:bearer|basic|digest|token)\s+[^\s,;'"]{1,2048}"""
    r"""|[^\s,;&)}\]'"]{1,512})"""
)
# ``Bearer``/``Basic`` credentials on their own (no key before them). The token must look like one
# (8+ characters of the token68 alphabet, with a digit or a symbol), so "Basic settings" is kept.
_CREDENTIALS = (
    r"\b(?P<scheme>b(?:earer|asic))\s+"
    r"(?P<token>(?=[A-Za-z0-9._~+/=-]{8,})[A-Za-z]*[0-9._~+/=-][A-Za-z0-9._~+/=-]*)"
)
# The password of a URL's user info: ``scheme://user:password@host`` (the user may be empty).
_URL_PASSWORD = r"(?P<userinfo>://[^\s:/@'\"?#]{0,256}:)(?P<password>[^\s@/'\"]{1,256})(?=@)"


class SecretScanner:
    """The built-in rules as one regex, run over the lower-cased text.

    Python's regex engine is several times slower case-insensitively, and a traceback is
    kilobytes long, so matching happens on ``value.lower()`` with a case-sensitive pattern
    whose alternatives start with a literal (a key name, ``bearer``/``basic``, ``://``), and
    the masks are spliced into the original text at the matched positions. Text whose lower
    case has another length (a few non-ASCII letters) is matched case-insensitively instead.
    """

    def __init__(self, keys: Sequence[str]) -> None:
        alternation = _trie(keys) or r"(?!x)x"
        key_value = r"(?P<key>" + alternation + r"[\w-]{0,32}['\"]?\s{0,4}[:=]\s{0,4})" + _VALUE
        # A lookahead on the possible first characters lets the engine skip other positions
        # without trying each alternative there (twice as fast on long text).
        first = sorted({k[0] for k in keys if k} | {"b", ":"})
        starts = "[" + "".join(re.escape(c) for c in first) + "]"
        source = f"(?={starts})(?:{key_value}|{_CREDENTIALS}|{_URL_PASSWORD})"
        self._lower = re.compile(source)
        self._any_case = re.compile(source, re.IGNORECASE)

    @staticmethod
    def _may_hold(value: str) -> bool:
        """A necessary condition, a few times cheaper than the regex: every rule needs a ``:``
        or ``=`` (after a key, in ``://``) or the word ``bearer``/``basic``. Most short
        arguments (ids, names) have none, and skip the scan."""
        if ":" in value or "=" in value:
            return True
        low = value.lower()
        return "bearer" in low or "basic" in low

    def _matches(self, value: str) -> Iterator[re.Match[str]]:
        if not self._may_hold(value):
            return iter(())
        low = value.lower()
        if len(low) == len(value):
            return self._lower.finditer(low)
        return self._any_case.finditer(value)

    def finds(self, value: str) -> bool:
        return self._may_hold(value) and next(self._matches(value), None) is not None

    def mask(self, value: str) -> str:
        parts: list[str] = []
        end = 0
        for match in self._matches(value):
            start, stop = match.span(_secret_group(match))
            parts.append(value[end:start])
            parts.append(REDACTED)
            end = stop
        if not parts:
            return value
        parts.append(value[end:])
        return "".join(parts)


def _trie(words: Sequence[str]) -> str:
    """``words`` as a regex alternation sharing prefixes (``p(?:assw(?:d|ord)|wd)``): the engine
    then tries one branch per first letter instead of every word at every position."""
    tree: dict[str, Any] = {}
    for word in words:
        node = tree
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}

    def build(node: dict[str, Any]) -> str:
        branches = [re.escape(char) + build(child) for char, child in sorted(node.items()) if char]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        if "" in node:
            return "(?:" + body + ")?"
        return body

    return build(tree)


def _secret_group(match: re.Match[str]) -> str:
    if match.group("key") is not None:
        return "value"
    if match.group("scheme") is not None:
        return "token"
    return "password"
