"""The ``packaging`` marker: tests of the built sdist and wheel in ``dist/``.

They need ``python -m build`` to have run, so a plain ``pytest`` leaves them out (deselected, and
reported as such); ``pytest -m packaging tests/packaging`` runs them after the build.
"""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "packaging: installs the built wheel and sdist from dist/")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "packaging" in (config.getoption("markexpr", "") or ""):
        return
    chosen = [i for i in items if i.get_closest_marker("packaging") is None]
    left_out = [i for i in items if i.get_closest_marker("packaging") is not None]
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = chosen
