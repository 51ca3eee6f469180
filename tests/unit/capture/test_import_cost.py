"""``import stemtrace`` stays light: no server deps, capture loads lazily."""

from __future__ import annotations

import json
import subprocess
import sys

FORBIDDEN = (
    "fastapi",
    "starlette",
    "pydantic",
    "uvicorn",
    "psycopg",
    "orjson",
    "sqlite3",
    "redis",
    "stemtrace.capture",
)


def test_import_stemtrace_loads_nothing_heavy() -> None:
    code = "import sys, json, stemtrace; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout))
    leaked = sorted(m for m in loaded if m.split(".")[0] in FORBIDDEN or m.startswith("stemtrace.capture"))
    assert leaked == []


def test_init_loads_capture_but_no_server_dependency() -> None:
    code = (
        "import sys, json, stemtrace; from celery import Celery;"
        "stemtrace.init(Celery(broker='inproc://x'), url='inproc://x');"
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout))
    assert "stemtrace.capture.install" in loaded
    assert not {m for m in loaded if m.split(".")[0] in FORBIDDEN[:6]}
