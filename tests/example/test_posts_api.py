"""The posts service served by ``fastlaunch run``, on SQLite and on a real PostgreSQL cluster."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from posts import serve
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """The served base URL and the database URL behind it."""
    tmp = tmp_path_factory.mktemp(request.param)
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp / 'posts.db'}"
    else:
        cluster = request.getfixturevalue("postgres")
        url = cluster.create_database(f"api_{tmp.name.replace('-', '_')}")
    with serve(url, tmp / "server.log") as base:
        yield base, url


@pytest.fixture(scope="module")
def api(backend: tuple[str, str]) -> str:
    return backend[0]


def count_rows(database_url: str, sql: str, **params: object) -> int:
    async def count() -> int:
        engine = create_async_engine(database_url)
        try:
            async with engine.connect() as conn:
                return int((await conn.execute(text(sql), params)).scalar_one())
        finally:
            await engine.dispose()

    return asyncio.run(count())


def client(base: str) -> httpx.Client:
    return httpx.Client(base_url=base, timeout=10)


def test_crud(api: str) -> None:
    with client(api) as http:
        created = http.post("/posts", json={"title": "Hello", "content": "First post"})
        assert created.status_code == 201
        post = created.json()
        assert post["title"] == "Hello" and post["publication_date"].endswith("Z")
        url = f"/posts/{post['id']}"
        assert http.get(url).json() == post

        patched = http.patch(url, json={"content": "Edited"})
        assert patched.status_code == 200
        assert patched.json() == {**post, "content": "Edited"}  # partial: the title is untouched
        dated = http.patch(url, json={"publication_date": "2024-05-01T12:00:00+02:00"}).json()
        assert dated["publication_date"] == "2024-05-01T10:00:00Z"  # stored and returned in UTC

        comment = http.post(f"{url}/comments", json={"content": "Nice"})
        assert comment.status_code == 201
        assert comment.json()["post_id"] == post["id"]
        assert [c["content"] for c in http.get(f"{url}/comments").json()] == ["Nice"]

        deleted = http.delete(url)
        assert deleted.status_code == 204 and deleted.content == b""
        assert http.get(url).status_code == 404
        assert http.get(f"{url}/comments").status_code == 404
        assert http.delete(url).status_code == 404


def test_pagination(api: str) -> None:
    with client(api) as http:
        ids = [http.post("/posts", json={"title": f"p{i}", "content": "x"}).json()["id"] for i in range(13)]
        everything = [p["id"] for p in http.get("/posts", params={"limit": 100}).json()]
        assert everything == sorted(everything) and set(ids) <= set(everything)
        assert [p["id"] for p in http.get("/posts").json()] == everything[:10]  # default limit 10
        page = http.get("/posts", params={"skip": 3, "limit": 4}).json()
        assert [p["id"] for p in page] == everything[3:7]
        assert http.get("/posts", params={"skip": len(everything)}).json() == []


def test_deleting_a_post_deletes_its_comments(backend: tuple[str, str]) -> None:
    api, database_url = backend
    with client(api) as http:
        post = http.post("/posts", json={"title": "t", "content": "c"}).json()
        for content in ("a", "b"):
            http.post(f"/posts/{post['id']}/comments", json={"content": content})
        orphans = "SELECT count(*) FROM comments WHERE post_id = :id"
        assert count_rows(database_url, orphans, id=post["id"]) == 2
        assert http.delete(f"/posts/{post['id']}").status_code == 204
        # The rows themselves are gone (a database that never reuses ids would hide orphans from the API).
        assert count_rows(database_url, orphans, id=post["id"]) == 0
        # A new post can never see the old comments, even if the database reused the id.
        again = http.post("/posts", json={"title": "t", "content": "c"}).json()
        assert http.get(f"/posts/{again['id']}/comments").json() == []


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "detail"),
    [
        ("post", "/posts", b'{"title": "x", "content": ', 422, "JSON decode error"),
        # Not UTF-8: FastAPI's 400, which the schema documents for the request bodies.
        ("post", "/posts", b'{"title": "\xff", "content": "c"}', 400, "error parsing the body"),
        ("post", "/posts", {"title": "x" * 256, "content": "c"}, 422, "at most 255 characters"),
        ("post", "/posts", {"title": "", "content": "c"}, 422, "at least 1 character"),
        ("post", "/posts", {"content": "c"}, 422, "Field required"),
        ("post", "/posts", {"title": "t", "content": "c\u0000"}, 422, "should match pattern"),
        ("post", "/posts", {"title": "t", "content": "c", "publication_date": 0}, 422, "ISO 8601"),
        ("post", "/posts", {"title": "t", "content": "c", "publication_date": "2024-01-01T00:00:00"}, 422, "timezone"),
        ("patch", "/posts/1", {"title": None}, 422, "valid string"),
        ("get", "/posts?skip=-1", None, 422, "greater than or equal to 0"),
        ("get", "/posts?limit=0", None, 422, "greater than or equal to 1"),
        ("get", "/posts?limit=1000", None, 422, "less than or equal to 100"),
        ("get", "/posts?limit=ten", None, 422, "valid integer"),
        ("get", "/posts/999999", None, 404, "Post 999999 not found."),
        ("get", "/posts/0", None, 422, "greater than or equal to 1"),
        ("get", "/posts/99999999999999999999", None, 422, "less than or equal to 2147483647"),
        ("post", "/posts/999999/comments", {"content": "c"}, 404, "Post 999999 not found."),
        ("put", "/posts/1", {"title": "t", "content": "c"}, 405, "Method Not Allowed"),
    ],
)
def test_bad_input_is_a_clear_4xx(api: str, method: str, path: str, body: object, status: int, detail: str) -> None:
    with client(api) as http:
        if isinstance(body, bytes):
            response = http.request(method, path, content=body, headers={"content-type": "application/json"})
        else:
            response = http.request(method, path, json=body)
    assert response.status_code == status, response.text
    assert detail in response.text
    if status == 405:
        assert response.headers["allow"] == "DELETE, GET, HEAD, PATCH"


def test_schemathesis_finds_no_server_error_or_schema_violation(api: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "schemathesis"), "run", f"{api}/openapi.json", "--checks", "all"]
        + ["--max-examples", "15", "--seed", "20261123", "--generation-database", "none", "--no-color"]
        + ["--report-dir", str(tmp_path / "report")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "7 passed" in result.stdout or "Tested: 7" in result.stdout
