"""A missing client library is reported as an install problem, never as an unreachable broker."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_a_missing_broker_client_names_the_module_and_the_pip_command(tmp_path: Path) -> None:
    # Shadow redis-py with a package whose import fails the way an absent one does.
    shadow = tmp_path / "shadow" / "redis"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'redis'\", name='redis')\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEMTRACE_")}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path / "shadow"), env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, "-c", "from stemtrace.cli import main; main()", "server",
         "--store", f"sqlite:///{tmp_path}/s.db", "--events-url", "redis://127.0.0.1:6379/0"],
        capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "'redis'" in proc.stderr and 'pip install "redis"' in proc.stderr, proc.stderr
    assert "cannot reach" not in proc.stderr
