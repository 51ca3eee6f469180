"""stemtrace: see what your Celery workflows really did.

``stemtrace.init(app)`` is the whole library API. It imports nothing heavy: the
capture machinery loads on first call, and server dependencies never load here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["__version__", "init"]

if TYPE_CHECKING:
    from celery import Celery


def init(app: Celery, **options: Any) -> None:
    """Instrument ``app`` in this process and every worker process it forks.

    Idempotent. Options are documented in docs/configuration.md; each one can be
    overridden by a ``STEMTRACE_<NAME>`` environment variable.
    """
    from stemtrace.capture.install import install

    install(app, **options)
