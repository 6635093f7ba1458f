"""Swagger UI and ReDoc served from files shipped inside fastlaunch, so ``/docs`` and ``/redoc`` work
where the CDN that FastAPI's defaults load them from cannot be reached.

The files are swagger-ui-dist's and ReDoc's, copied from npm into ``docs_assets/`` by
``scripts/update-docs-assets`` (pinned versions and sha512 integrity; ``docs_assets/VERSIONS`` lists them
with their licences): a package that ships them, ``drf-spectacular-sidecar``, would drag Django (~60 MB) into
every image. Only Starlette is used, as in Starlette 0.22 (FastAPI 0.88).
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response

ASSETS_DIR = Path(__file__).resolve().parent / "docs_assets"
# URL name -> (path under ASSETS_DIR, media type). Nothing else in the folder is served.
ASSETS = {
    "swagger-ui-bundle.js": ("swagger-ui-dist/swagger-ui-bundle.js", "text/javascript"),
    "swagger-ui.css": ("swagger-ui-dist/swagger-ui.css", "text/css"),
    "favicon-32x32.png": ("swagger-ui-dist/favicon-32x32.png", "image/png"),
    "redoc.standalone.js": ("redoc/bundles/redoc.standalone.js", "text/javascript"),
    "oauth2-redirect.html": ("swagger-ui-dist/oauth2-redirect.html", "text/html"),
    "oauth2-redirect.js": ("swagger-ui-dist/oauth2-redirect.js", "text/javascript"),
}


class DocsAssetsMissing(FileNotFoundError):
    """fastlaunch's copy of the Swagger UI / ReDoc files is incomplete: a broken installation."""


def assets_dir() -> Path:
    missing = [rel for rel, _ in ASSETS.values() if not (ASSETS_DIR / rel).is_file()]
    if missing:
        # Checked at install() rather than per request: a broken wheel fails at startup, not as a blank page.
        raise DocsAssetsMissing(
            f"fastlaunch's docs files are missing from {ASSETS_DIR}: {', '.join(missing)}; "
            "reinstall fastlaunch (pip install --force-reinstall fastlaunch)."
        )
    return ASSETS_DIR


SWAGGER_HTML = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title} - Swagger UI</title>
<link rel="stylesheet" href="{assets}/swagger-ui.css">
<link rel="icon" type="image/png" href="{assets}/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script>
window.ui = SwaggerUIBundle({{
  url: {openapi_url},
  dom_id: "#swagger-ui",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  oauth2RedirectUrl: window.location.origin + {oauth2_url},
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
  layout: "BaseLayout"
}});
</script>
</body>
</html>
"""

REDOC_HTML = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title} - ReDoc</title>
<link rel="icon" type="image/png" href="{assets}/favicon-32x32.png">
<style>body {{ margin: 0; padding: 0; }}</style>
</head>
<body>
<redoc spec-url={openapi_attr}></redoc>
<script src="{assets}/redoc.standalone.js"></script>
</body>
</html>
"""


def install(
    app: Any,
    *,
    docs_url: str = "/docs",
    redoc_url: str | None = "/redoc",
    openapi_url: str | None = None,
    assets_url: str = "/_fastlaunch/docs",
    title: str | None = None,
) -> None:
    """Serve Swagger UI at ``docs_url`` and ReDoc at ``redoc_url`` from local files.

    Any route already at those paths (FastAPI's CDN-backed defaults) is replaced. ``openapi_url`` defaults
    to the app's own (FastAPI's ``app.openapi_url``) or ``/openapi.json``.
    """
    root = assets_dir()
    spec_url = openapi_url or getattr(app, "openapi_url", None) or "/openapi.json"
    page_title = html.escape(title or getattr(app, "title", None) or "API")

    def prefix(request: Request) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/")

    async def swagger(request: Request) -> HTMLResponse:
        base = prefix(request)
        page = SWAGGER_HTML.format(
            title=page_title,
            assets=html.escape(base + assets_url),
            openapi_url=_js(base + spec_url),
            oauth2_url=_js(f"{base}{assets_url}/oauth2-redirect.html"),
        )
        return HTMLResponse(page)

    async def redoc(request: Request) -> HTMLResponse:
        base = prefix(request)
        page = REDOC_HTML.format(
            title=page_title,
            assets=html.escape(base + assets_url),
            openapi_attr=f'"{html.escape(base + spec_url)}"',
        )
        return HTMLResponse(page)

    async def asset(request: Request) -> Response:
        entry = ASSETS.get(request.path_params["name"])
        if entry is None:
            return Response("Not Found", status_code=404, media_type="text/plain")
        relative, media_type = entry
        # Versioned with the installed fastlaunch: safe to cache for a day.
        return FileResponse(root / relative, media_type=media_type, headers={"Cache-Control": "public, max-age=86400"})

    pages = {docs_url: swagger, **({redoc_url: redoc} if redoc_url else {})}
    replaced = {*pages, f"{docs_url}/oauth2-redirect"}  # FastAPI's own redirect page goes with its /docs
    app.router.routes[:] = [r for r in app.router.routes if getattr(r, "path", None) not in replaced]
    for path, endpoint in pages.items():
        app.add_route(path, endpoint, methods=["GET"], include_in_schema=False)
    app.add_route(f"{assets_url}/{{name}}", asset, methods=["GET"], include_in_schema=False)


def _js(value: str) -> str:
    """A JavaScript string literal that cannot close the <script> element."""
    return json.dumps(value).replace("<", "\\u003c")
