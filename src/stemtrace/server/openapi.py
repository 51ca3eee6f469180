"""Print the API's OpenAPI spec, stable (sorted keys), for ``frontend/openapi.json``.

Run ``python -m stemtrace.server.openapi > frontend/openapi.json`` after changing a route;
a test fails while the committed copy is stale.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def spec() -> dict[str, Any]:
    from stemtrace.server.app import create_app

    app = create_app(store_url="sqlite:///unused-openapi.db", ingest=False)
    return app.openapi()


def render() -> str:
    return json.dumps(spec(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main() -> None:
    sys.stdout.write(render())


if __name__ == "__main__":
    main()
