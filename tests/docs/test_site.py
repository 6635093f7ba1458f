"""The documentation site: built strictly (a broken link or a missing page fails), generated reference pages in
step with the code, nothing loaded from another host, and the pages render in headless Chromium."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from functools import partial
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from support import ROOT, chromium

from fastlaunch.core.settings import SETTINGS


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={"NO_MKDOCS_2_WARNING": "1", "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return out


def test_reference_pages_are_generated_from_the_code(site: Path) -> None:
    settings = (site / "reference/settings/index.html").read_text()
    for s in SETTINGS:
        assert f"<code>{s.env}</code>" in settings or not s.env, s.env
    cli = (site / "reference/cli/index.html").read_text()
    for command in ("run", "dev", "workers", "prestart", "settings", "init", "lint", "check"):
        assert f"Usage: fastlaunch {command} [OPTIONS]" in cli, command
    assert "--workers-per-core" in cli and "--no-prestart" in cli


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag in ("script", "img", "iframe") and found.get("src"):
            self.refs.append(str(found["src"]))
        if tag == "link" and found.get("href") and found.get("rel") in ("stylesheet", "preload", "icon", "preconnect"):
            self.refs.append(str(found["href"]))


def test_the_site_loads_nothing_from_another_host(site: Path) -> None:
    external = []
    pages = sorted(site.rglob("*.html"))
    assert len(pages) >= 10
    for page in pages:
        parser = _Refs()
        parser.feed(page.read_text())
        external += [f"{page.relative_to(site)}: {ref}" for ref in parser.refs if "//" in ref]
    assert not external, external


class _Recorder(SimpleHTTPRequestHandler):
    log: list[tuple[str, int]]

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        self.log.append((self.path, int(code)))

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture
def served(site: Path) -> Iterator[tuple[str, list[tuple[str, int]]]]:
    log: list[tuple[str, int]] = []
    handler = type("Handler", (_Recorder,), {"log": log})
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", log
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.mark.parametrize(("path", "text"), [("/", "In 60 seconds"), ("/reference/settings/", "WEB_CONCURRENCY")])
def test_pages_render_in_chromium_with_every_asset(
    served: tuple[str, list[tuple[str, int]]], tmp_path: Path, path: str, text: str
) -> None:
    base, log = served
    dom = chromium(f"{base}{path}", tmp_path / "profile", "--dump-dom")
    assert text in dom
    shot = tmp_path / "page.png"
    chromium(f"{base}{path}", tmp_path / "profile-shot", f"--screenshot={shot}")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    missing = [(p, code) for p, code in log if code >= 400]
    assert not missing, missing
    loaded = {p.split("?")[0].rsplit(".", 1)[-1] for p, code in log if code == 200}
    assert {"css", "js"} <= loaded, log  # the theme's stylesheet and scripts were served, not skipped
