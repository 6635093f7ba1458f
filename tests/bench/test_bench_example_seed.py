"""The example's database is seeded before any measured server starts, by a process of its own, so that no
server of a group alone has served the writes (bench/example.py)."""

from __future__ import annotations

import os
import sqlite3
import sys
from pathlib import Path

import pytest
from support import ROOT

# The repository's bench package, not this tests/bench folder (a namespace package on pytest's path).
sys.path.insert(0, str(ROOT))

from bench import example  # noqa: E402


def test_the_example_is_seeded_without_a_server(tmp_path: Path) -> None:
    config = example.load_config()
    try:
        app = example.resolve_app(config)
    except example.ExampleUnavailable as exc:
        pytest.skip(str(exc))
    env = {config.database_env: example.expand(config.databases["sqlite"], {"workdir": str(tmp_path)}), **config.env}
    example.prepare(config, {**os.environ, **env}, tmp_path / "prepare.log")
    example.seed_in_process(config, app, config.dir, env)
    with sqlite3.connect(tmp_path / "bench.db") as db:
        titles = [title for (title,) in db.execute("SELECT title FROM posts ORDER BY id")]
    assert titles == [f"Post {n}" for n in range(1, config.seed_count + 1)]
