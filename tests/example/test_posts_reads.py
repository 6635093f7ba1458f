"""The GET endpoints read outside a transaction: on PostgreSQL a read is its SELECT, with no BEGIN/ROLLBACK
round trips around it (the writes keep their transactions)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from pg import PostgresCluster
from posts import serve

# One logged statement: the backend's PID and the statement's first line.
LINE = re.compile(r"\[(\d+)\] LOG:  (.*)")
TRANSACTION = re.compile(r"^statement: (BEGIN|ROLLBACK|COMMIT)\b")


def test_reads_send_no_transaction_statements(postgres: PostgresCluster, pg_database: str, tmp_path: Path) -> None:
    name = pg_database.rsplit("/", 1)[1]
    # Only this database logs its statements, so the shared cluster log holds no other test's.
    postgres.execute(f"ALTER DATABASE \"{name}\" SET log_statement = 'all'")
    with serve(pg_database, tmp_path / "server.log") as base, httpx.Client(base_url=base, timeout=10) as client:
        post = client.post("/posts", json={"title": "Reads", "content": "No transaction."})
        assert post.status_code == 201, post.text
        post_id = post.json()["id"]
        logged = postgres.log.read_bytes()
        writes, mark = logged.decode(errors="replace"), len(logged)
        for path in ("/posts?limit=10", f"/posts/{post_id}", f"/posts/{post_id}/comments") * 3:
            assert client.get(path).status_code == 200, path
        reads = postgres.log.read_bytes()[mark:].decode(errors="replace")

    write_statements = [m[2] for m in LINE.finditer(writes)]
    assert any(TRANSACTION.match(s) for s in write_statements), "the write's BEGIN/COMMIT are missing: logging off?"
    # The write's connection may log its return to the pool (a ROLLBACK) after the response: not a read.
    writers = {m[1] for m in LINE.finditer(writes) if "INSERT INTO posts" in m[2]}
    read_statements = [m[2] for m in LINE.finditer(reads) if m[1] not in writers]
    assert sum("SELECT posts." in s for s in read_statements) >= 6, reads
    assert not [s for s in read_statements if TRANSACTION.match(s)], reads
