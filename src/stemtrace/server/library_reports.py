"""The library processes' latest health reports, as ``/api/health`` and ``/metrics`` show them,
read from the store at most once every :data:`TTL_S` seconds.

Every process running ``stemtrace.init`` reports every 30 s (``health_interval``), so a fleet
has hundreds or thousands of rows (the last 1,000 are shown), and a load balancer's probe,
Prometheus and the UI ask for them every few seconds: reading and parsing them, and writing
3,000 ``/metrics`` series from them, was most of either page's time (docs/benchmarks-server.md,
"Health and metrics"). Reports that change every 30 s may be a few seconds old when shown:
both pages say so in their documentation.
"""

from __future__ import annotations

from typing import Any

from stemtrace.server.store import Store
from stemtrace.server.ttl_cache import PerStore

TTL_S = 5.0
SHOWN = 100  # reports listed by /api/health (all of them are in /metrics)

_FIELDS = (
    ("sent", "Events the library sent"),
    ("dropped", "Events the library dropped"),
    ("errors", "Errors the library counted"),
)


def _label(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class LibraryReports:
    """One reading of the reports, with what both pages derive from it, computed once."""

    def __init__(self, reports: list[dict[str, Any]]) -> None:
        self.reports = reports  # newest first
        self.sent = sum(int(x.get("sent") or 0) for x in reports)
        self.dropped = sum(int(x.get("dropped") or 0) for x in reports)
        self.errors = sum(int(x.get("errors") or 0) for x in reports)
        self._lines: list[str] | None = None

    def exposition(self) -> list[str]:
        """The ``stemtrace_library_*_total`` families, one series per process."""
        if self._lines is None:
            labels = [
                f'{{host="{_label(x.get("host"))}",pid="{_label(x.get("pid"))}",inst="{_label(x.get("inst"))}"}}'
                for x in self.reports
            ]
            lines = []
            for field, help_text in _FIELDS:
                name = f"stemtrace_library_{field}_total"
                lines.append(f"# HELP {name} {help_text}, by process (latest report).")
                lines.append(f"# TYPE {name} counter")
                lines.extend(
                    f"{name}{lab} {float(x.get(field) or 0):g}"
                    for lab, x in zip(labels, self.reports, strict=True)
                )
            self._lines = lines
        return self._lines


_cache: PerStore[LibraryReports] = PerStore(TTL_S, lambda store: LibraryReports(store.library_reports()))


def latest(store: Store) -> LibraryReports:
    """The reports as read at most :data:`TTL_S` seconds ago; raises what the store raises."""
    return _cache.get(store)
