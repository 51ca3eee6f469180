"""Hatchling build hook: build the web UI into ``src/stemtrace/server/static`` when it is missing.

The wheel must always carry the UI (``pip install "stemtrace[server]"`` needs no Node.js). A clean
checkout has no built bundle, so when ``index.html`` is absent this runs ``npm ci && npm run build``
in ``frontend/``. Building an sdist does not need the bundle (the sdist carries ``frontend/``),
so Node.js is only required when a wheel is built from sources without the assets.
Set ``STEMTRACE_SKIP_UI_BUILD=1`` to skip (the wheel then fails the check below unless assets exist).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class UIBuildHook(BuildHookInterface[Any]):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or version == "editable":
            return  # an editable install serves whatever `npm run build` last produced
        root = Path(self.root)
        static = root / "src" / "stemtrace" / "server" / "static"
        frontend = root / "frontend"
        if (static / "index.html").is_file():
            return
        if os.environ.get("STEMTRACE_SKIP_UI_BUILD") != "1":
            npm = shutil.which("npm")
            if npm is None:
                raise RuntimeError(
                    "The stemtrace web UI is not built and npm is not on PATH. Install Node.js >= 20.19 "
                    "and retry, or build it yourself: cd frontend && npm ci && npm run build"
                )
            if not (frontend / "package.json").is_file():
                raise RuntimeError(f"{frontend} is missing: cannot build the web UI")
            self.app.display_info("Building the stemtrace web UI (npm ci && npm run build)…")
            for cmd in ([npm, "ci", "--no-audit", "--no-fund"], [npm, "run", "build"]):
                subprocess.run(cmd, cwd=frontend, check=True)
        if not (static / "index.html").is_file():
            raise RuntimeError(f"the web UI build did not produce {static / 'index.html'}")
