"""The interactive API explorer at ``/api/docs``, served from the package itself.

FastAPI's default page loads Swagger UI from a CDN and needs an inline script; this
one uses the copy the UI build puts in ``static/api-docs/`` and an external init
script, so it works air-gapped and under a CSP without ``'unsafe-inline'`` scripts.
Only GET is offered as "Try it out": the API is read-only.
"""

from __future__ import annotations

import html
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

_INIT_JS = """\
window.addEventListener('load', function () {
  var url = document.querySelector('meta[name="stemtrace-openapi"]').content;
  window.ui = SwaggerUIBundle({
    url: url,
    dom_id: '#swagger-ui',
    deepLinking: true,
    supportedSubmitMethods: ['get'],
    presets: [SwaggerUIBundle.presets.apis],
    layout: 'BaseLayout'
  });
});
"""

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>stemtrace API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="stemtrace-openapi" content="{openapi}">
<link rel="stylesheet" href="{root}/api-docs/swagger-ui.css">
</head><body><div id="swagger-ui"></div>
<script src="{root}/api-docs/swagger-ui-bundle.js"></script>
<script src="{root}/api/docs/init.js"></script>
</body></html>
"""

_NOT_BUILT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>stemtrace API</title></head><body>
<h1>stemtrace API</h1><p>The interactive explorer is part of the UI build, which this installation
lacks. The specification is at <a href="{openapi}">{openapi}</a>.</p></body></html>
"""


def make_router(static_dir: Path) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/api/docs")
    def docs_page(request: Request) -> HTMLResponse:
        root = html.escape(str(request.scope.get("root_path", "")).rstrip("/"), quote=True)
        openapi = f"{root}/api/openapi.json"
        built = (static_dir / "api-docs" / "swagger-ui-bundle.js").is_file()
        page = _PAGE if built else _NOT_BUILT
        return HTMLResponse(page.format(root=root, openapi=openapi))

    @router.get("/api/docs/init.js")
    def docs_init() -> Response:
        return Response(_INIT_JS, media_type="text/javascript", headers={"Cache-Control": "no-cache"})

    return router
