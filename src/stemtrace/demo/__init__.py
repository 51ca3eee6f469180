"""``stemtrace demo``: an embedded Celery app, a real worker and the server in one process.

Nothing to install beyond ``stemtrace[server]`` and no broker to run: tasks travel over
kombu's in-memory transport, results through the in-memory cache backend, and events
through the ``inproc://`` transport straight into the server's ingest.
"""

from __future__ import annotations
