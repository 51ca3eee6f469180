"""Where a SQLite store may start empty: never in a directory that does not exist (a data
directory that vanished), only in stemtrace's own default directory, and always with a warning."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from stemtrace.server.store import StoreError, open_store


def test_a_missing_directory_is_never_created(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        open_store(f"sqlite:///{tmp_path / 'gone' / 'stemtrace.db'}")
    assert not (tmp_path / "gone").exists()


def test_a_new_empty_store_is_announced(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="stemtrace.server.store"):
        open_store(f"sqlite:///{tmp_path / 'new.db'}").close()
        open_store(f"sqlite:///{tmp_path / 'new.db'}").close()  # reopened: nothing to say
    said = [r.getMessage() for r in caplog.records if "new, empty" in r.getMessage()]
    assert len(said) == 1 and "new.db" in said[0]


def test_the_default_directory_is_created(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    from stemtrace.server.settings import default_store_url

    url = default_store_url()
    assert str(tmp_path / "xdg") in url
    open_store(url).close()
    assert Path(url.split("sqlite://", 1)[1]).exists()
