"""The guard every signal handler runs under: a bug in the library never raises into Celery.

An exception inside a handler is counted (``library.health``'s ``errors``) and logged once per
kind. The rare handlers are wrapped by :func:`guarded`; the four that run for every task do the
same inline (``try``/:func:`failed`), which costs less than a wrapper's call.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from stemtrace.capture import state as _state

F = TypeVar("F", bound=Callable[..., None])


def failed(st: _state.State, where: str, exc: Exception) -> None:
    """A handler's bug: counted, and logged once per kind; never raised into Celery."""
    if st.has_emitter:
        st.emitter().errors += 1
    st.log_once(f"{where}:{type(exc).__name__}", exc)


def guarded(fn: F) -> F:
    """Never let a handler raise into Celery. The per-task handlers inline this instead
    (``_state._state``, ``try``/``_failed``): a wrapper's call and keyword repacking cost
    more than their own work."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        st = _state.current()
        if st is None:
            return
        try:
            fn(st, *args, **kwargs)
        except Exception as exc:
            failed(st, fn.__name__, exc)

    return wrapper  # type: ignore[return-value]
