from __future__ import annotations

import asyncio
import re

import httpx
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette

from fastlaunch import offline_docs


def get(app: object, path: str, root_path: str = "") -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, root_path=root_path)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.get(path)

    return asyncio.run(go())


def make_app() -> FastAPI:
    app = FastAPI(title="Demo <api>")  # FastAPI's own CDN-backed /docs and /redoc are replaced

    @app.get("/items")
    async def items() -> list[int]:
        return [1]

    offline_docs.install(app)
    return app


def test_pages_load_only_local_assets() -> None:
    app = make_app()
    for path in ("/docs", "/redoc"):
        page = get(app, path)
        assert page.status_code == 200
        assert "Demo &lt;api&gt;" in page.text
        urls = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert urls, page.text
        assert all(u.startswith("/_fastlaunch/docs/") for u in urls), urls
        assert "cdn" not in page.text and "https://" not in page.text
        for url in urls:
            assert get(app, url).status_code == 200, url
    assert '"/openapi.json"' in get(app, "/docs").text
    assert get(app, "/docs/oauth2-redirect").status_code == 404  # FastAPI's CDN page went with /docs


def test_assets_have_their_types_and_nothing_else_is_served() -> None:
    app = make_app()
    js = get(app, "/_fastlaunch/docs/swagger-ui-bundle.js")
    assert js.headers["content-type"].startswith("text/javascript")
    assert len(js.content) > 100_000
    assert get(app, "/_fastlaunch/docs/redoc.standalone.js").content.startswith(b"/*")
    assert get(app, "/_fastlaunch/docs/swagger-ui.css").headers["content-type"].startswith("text/css")
    assert get(app, "/_fastlaunch/docs/LICENSE").status_code == 404
    assert get(app, "/_fastlaunch/docs/..%2F..%2F__init__.py").status_code == 404


def test_root_path_prefixes_every_url() -> None:
    app = Starlette()
    offline_docs.install(app, openapi_url="/schema.json")
    page = get(app, "/docs", root_path="/api").text
    assert 'src="/api/_fastlaunch/docs/swagger-ui-bundle.js"' in page
    assert '"/api/schema.json"' in page


def test_missing_assets_package_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(offline_docs, "ASSETS_PACKAGE", "no_such_assets_package")
    with pytest.raises(offline_docs.DocsAssetsMissing, match=r"pip install 'fastlaunch\[docs\]'"):
        offline_docs.install(Starlette())
