from __future__ import annotations

import asyncio
import base64
import hashlib
import importlib.machinery
import importlib.util
import io
import json
import re
import shutil
import sys
import tarfile
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from support import ROOT

from fastlaunch import offline_docs

UPDATE_SCRIPT = ROOT / "scripts" / "update-docs-assets"


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


def test_every_asset_is_the_packaged_file_byte_for_byte() -> None:
    app = make_app()
    for name, (relative, media_type) in offline_docs.ASSETS.items():
        served = get(app, f"/_fastlaunch/docs/{name}")
        assert served.status_code == 200, name
        assert served.headers["content-type"].startswith(media_type), name
        assert served.content == (offline_docs.ASSETS_DIR / relative).read_bytes(), name


def read_versions() -> dict[tuple[str, str, str], dict[str, str]]:
    """VERSIONS as {(package, version, integrity): {file: sha256}}."""
    packages: dict[tuple[str, str, str], dict[str, str]] = {}
    files: dict[str, str] = {}
    for line in (offline_docs.ASSETS_DIR / "VERSIONS").read_text().splitlines():
        if line.startswith("#"):
            continue
        if line.startswith(" "):
            digest, path = line.split()
            files[path] = digest
        else:
            package, version, integrity = line.split()
            files = packages[(package, version, integrity)] = {}
    return packages


def test_versions_lists_every_file_with_its_origin_and_licence() -> None:
    packages = read_versions()
    assert [(package, version) for package, version, _ in packages] == [
        ("swagger-ui-dist", "5.35.0"),
        ("redoc", "2.5.4"),
    ]
    assert all(integrity.startswith("sha512-") for _, _, integrity in packages)
    listed = {path: digest for files in packages.values() for path, digest in files.items()}
    on_disk = {
        str(p.relative_to(offline_docs.ASSETS_DIR)) for p in offline_docs.ASSETS_DIR.rglob("*") if p.is_file()
    } - {"VERSIONS"}
    assert set(listed) == on_disk
    for path, digest in listed.items():
        assert hashlib.sha256((offline_docs.ASSETS_DIR / path).read_bytes()).hexdigest() == digest, path
    assert {relative for relative, _ in offline_docs.ASSETS.values()} <= set(listed)
    for (package, _, _), files in packages.items():
        assert f"{package}/LICENSE" in files
        assert not [path for path in files if path.endswith(".map")]
    # The notices the bundles point to in their first line ship next to them.
    for relative in ("swagger-ui-dist/swagger-ui-bundle.js", "redoc/bundles/redoc.standalone.js"):
        first = (offline_docs.ASSETS_DIR / relative).read_bytes().split(b"\n", 1)[0].decode()
        notice = re.fullmatch(r"/\*! For license information please see (\S+) \*/", first)
        assert notice, first
        assert f"{relative.rpartition('/')[0]}/{notice[1]}" in listed


def test_versions_match_the_pins_of_the_update_script(monkeypatch: pytest.MonkeyPatch) -> None:
    # Catches pins edited without rerunning the script; the sha256 check above catches files edited by hand.
    script = load_update_script(monkeypatch)
    assert list(read_versions()) == [(pin.package, pin.version, pin.integrity) for pin in script.PINS]


def test_missing_file_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    shutil.copytree(offline_docs.ASSETS_DIR, tmp_path / "docs_assets")
    (tmp_path / "docs_assets" / "redoc" / "bundles" / "redoc.standalone.js").unlink()
    monkeypatch.setattr(offline_docs, "ASSETS_DIR", tmp_path / "docs_assets")
    with pytest.raises(
        offline_docs.DocsAssetsMissing, match=r"redoc/bundles/redoc\.standalone\.js; reinstall fastlaunch"
    ):
        offline_docs.install(Starlette())


def load_update_script(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("update_docs_assets", str(UPDATE_SCRIPT))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, loader.name, module)  # its dataclass resolves annotations there
    loader.exec_module(module)
    return module


def fake_registry(root: Path, package: str, version: str, files: dict[str, bytes]) -> str:
    """A tarball laid out as npm's, under a file:// registry; returns its sha512 integrity."""
    tarball = root / package / "-" / f"{package}-{version}.tgz"
    tarball.parent.mkdir(parents=True)
    with tarfile.open(tarball, "w:gz") as tar:
        for path, content in {"package.json": json.dumps({"version": version}).encode(), **files}.items():
            info = tarfile.TarInfo(f"package/{path}")
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return "sha512-" + base64.b64encode(hashlib.sha512(tarball.read_bytes()).digest()).decode()


def test_update_script_verifies_integrity_and_takes_the_referenced_notices(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    script = load_update_script(monkeypatch)
    bundle = b"/*! For license information please see ui.js.LICENSE.txt */\nvar ui = 1;\n//# sourceMappingURL=ui.js.map"
    files = {"LICENSE": b"MIT", "dist/ui.js": bundle, "dist/ui.js.LICENSE.txt": b"notices", "dist/ui.js.map": b"{}"}
    integrity = fake_registry(tmp_path / "registry", "ui", "1.2.3", files)
    dest = tmp_path / "out" / "docs_assets"
    monkeypatch.setattr(script, "REGISTRY", (tmp_path / "registry").as_uri())
    monkeypatch.setattr(script, "DEST", dest)

    monkeypatch.setattr(script, "PINS", (script.Pin("ui", "1.2.3", integrity, ("LICENSE", "dist/ui.js")),))
    script.main()
    written = {str(p.relative_to(dest)): p.read_bytes() for p in dest.rglob("*") if p.is_file()}
    assert written.pop("VERSIONS").decode().splitlines()[2:] == [
        f"ui 1.2.3 {integrity}",
        f"    {hashlib.sha256(b'MIT').hexdigest()} ui/LICENSE",
        f"    {hashlib.sha256(bundle).hexdigest()} ui/dist/ui.js",
        f"    {hashlib.sha256(b'notices').hexdigest()} ui/dist/ui.js.LICENSE.txt",
    ]
    assert written == {"ui/LICENSE": b"MIT", "ui/dist/ui.js": bundle, "ui/dist/ui.js.LICENSE.txt": b"notices"}

    tampered = "sha512-" + base64.b64encode(hashlib.sha512(b"another tarball").digest()).decode()
    monkeypatch.setattr(script, "PINS", (script.Pin("ui", "1.2.3", tampered, ("LICENSE",)),))
    with pytest.raises(SystemExit, match="integrity mismatch"):
        script.main()
    assert (dest / "ui" / "dist" / "ui.js").read_bytes() == bundle  # the previous files stay
