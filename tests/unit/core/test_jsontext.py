"""``core.jsontext.dumps`` is ``json.dumps`` with the library's options, only faster."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stemtrace.core.jsontext import dumps


def reference(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=repr, ensure_ascii=False)


class Odd:
    def __repr__(self) -> str:
        return "<odd \u00e9>"


_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(),
    st.builds(Odd),
)
_KEYS = st.one_of(st.text(max_size=5), st.integers(), st.booleans(), st.none())
_VALUES = st.recursive(
    _LEAVES,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(_KEYS, inner, max_size=4),
    ),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(_VALUES)
def test_the_same_text_as_json_dumps(value: Any) -> None:
    assert dumps(value) == reference(value)


def test_a_cycle_is_reported_as_json_dumps_reports_it() -> None:
    looped: list[Any] = [1]
    looped.append(looped)
    with pytest.raises(ValueError, match="Circular reference"):
        reference(looped)
    with pytest.raises(ValueError, match="Circular reference"):
        dumps(looped)


def test_deep_but_acyclic_nesting_still_encodes() -> None:
    deep: Any = []
    for _ in range(50):
        deep = [deep]
    assert dumps(deep) == reference(deep)
