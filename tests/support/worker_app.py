"""The module a worker subprocess loads: ``celery -A tests.support.worker_app worker``."""

from __future__ import annotations

from tests.support.app import AppSettings, make_app

tasks = make_app(AppSettings.from_env())
app = tasks.app
