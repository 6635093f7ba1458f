"""/docs and /redoc render in headless Chromium with every host but 127.0.0.1 unreachable."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from posts import serve
from support import ASSETS, FASTLAUNCH, chromium, free_port, running

OPERATIONS = ["/posts", "/posts/{post_id}", "/posts/{post_id}/comments"]


@pytest.fixture(scope="module")
def docs_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("docs")
    with serve(f"sqlite+aiosqlite:///{tmp / 'posts.db'}", tmp / "server.log") as base:
        yield base


def test_swagger_ui_renders_every_operation_offline(docs_site: str, tmp_path: Path) -> None:
    dom = chromium(f"{docs_site}/docs", tmp_path / "profile", "--dump-dom")
    rendered = [p for p in OPERATIONS if f'class="opblock-summary-path" data-path="{p}"' in dom]
    assert rendered == OPERATIONS, dom[-3000:]
    assert dom.count('class="opblock-summary-path"') == 7  # GET/POST, GET/PATCH/DELETE, POST/GET
    screenshot = tmp_path / "docs.png"
    chromium(f"{docs_site}/docs", tmp_path / "profile-shot", f"--screenshot={screenshot}")
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_redoc_renders_offline(docs_site: str, tmp_path: Path) -> None:
    dom = chromium(f"{docs_site}/redoc", tmp_path / "profile", "--dump-dom")
    for operation in ("list_posts_posts_get", "create_comment_posts__post_id__comments_post"):
        assert f"operation/{operation}" in dom


def test_cdn_docs_stay_blank_with_the_network_closed(tmp_path: Path) -> None:
    # The control: FastAPI's default /docs loads Swagger UI from a CDN, and so renders nothing here.
    port = free_port()
    env = {"HOST": "127.0.0.1", "PORT": str(port), "WEB_CONCURRENCY": "1"}
    url = f"http://127.0.0.1:{port}"
    with running([FASTLAUNCH, "run"], cwd=ASSETS / "docsapp", env=env, log=tmp_path / "s.log", ready_url=f"{url}/"):
        dom = chromium(f"{url}/docs", tmp_path / "profile", "--dump-dom")
    assert "cdn.jsdelivr.net" in dom
    assert "opblock" not in dom
