"""Persistent state behind the API: one ``Store`` interface, SQLite and PostgreSQL engines."""

from __future__ import annotations

from stemtrace.server.store.base import (
    ApplyResult,
    BadCursor,
    Changes,
    ChildRow,
    Page,
    PendingApply,
    Store,
    StoreError,
    TaskDetail,
    TaskQuery,
    TaskRow,
    WorkflowQuery,
    WorkflowRow,
)
from stemtrace.server.store.sql import SqlStore, open_store

__all__ = [
    "ApplyResult",
    "BadCursor",
    "Changes",
    "ChildRow",
    "Page",
    "PendingApply",
    "SqlStore",
    "Store",
    "StoreError",
    "TaskDetail",
    "TaskQuery",
    "TaskRow",
    "WorkflowQuery",
    "WorkflowRow",
    "open_store",
]
