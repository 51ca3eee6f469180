"""Redaction: sensitive values never leave the process.

Three built-in rules plus an escape hatch, applied before serialization:

* key names (the default list plus ``redact_keys``) at any depth of args,
  kwargs and results, matched case-insensitively as substrings of the key
  (``user_password``, ``X-Auth-Token``);
* positional arguments declared per task name (``redact_args``);
* regular expressions (``redact_patterns``) on any captured text, exception
  messages and Celery's ``argsrepr`` included, where ``key=value`` and
  ``'key': 'value'`` forms of sensitive keys are also masked;
* ``redactor(task_name, field, value)`` for anything else.

A redacted value becomes ``"[redacted]"``: visible, never silently dropped.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
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
        alternation = "|".join(re.escape(k) for k in normalized) or r"(?!x)x"
        # ``password=hunter2``, ``"token": "abc"``, ``'api_key': 'x y'`` inside free text.
        self._kv = re.compile(
            r"(?i)(['\"]?[\w-]{0,32}(?:" + alternation + r")[\w-]{0,32}['\"]?\s{0,4}[:=]\s{0,4})"
            r"('[^']{0,512}'|\"[^\"]{0,512}\"|[^\s,;&)}\]]{1,512})"
        )
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
        """Mask sensitive ``key=value`` pairs and configured patterns inside free text."""
        low = value.lower()
        out = value
        # The cheap substring test spares the regex on the common, innocent text.
        if any(k in low for k in self._keys):
            out = self._kv.sub(lambda m: m.group(1) + REDACTED, value)
        for pattern in self._patterns:
            out = pattern.sub(REDACTED, out)
        return out

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
