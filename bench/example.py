"""The example service (example/) as bench scenarios, driven by bench/example.toml.

The example is optional here: when it (or PostgreSQL) is missing the scenarios are skipped with the reason.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.procs import HOST, http_get

ROOT = Path(__file__).resolve().parent.parent
CONFIG = Path(__file__).with_name("example.toml")


class ExampleUnavailable(RuntimeError):
    pass


@dataclass(frozen=True)
class ExampleConfig:
    dir: Path
    app: str
    prepare: list[str]
    database_env: str
    ready_path: str
    endpoints: list[str]
    seed_path: str
    seed_count: int
    seed_body: dict[str, str]
    list_path: str
    databases: dict[str, str]
    env: dict[str, str] = field(default_factory=dict)


def load_config(path: Path = CONFIG) -> ExampleConfig:
    data: dict[str, Any] = tomllib.loads(path.read_text())
    data["dir"] = ROOT / data["dir"]
    return ExampleConfig(**data)


def resolve_app(config: ExampleConfig) -> str:
    """The example's import string, after checking that it is there and importable in this venv."""
    pyproject = config.dir / "pyproject.toml"
    if not pyproject.is_file():
        raise ExampleUnavailable(f"{pyproject.relative_to(ROOT)} does not exist")
    app = config.app or tomllib.loads(pyproject.read_text()).get("tool", {}).get("fastlaunch", {}).get("app", "")
    if not app or ":" not in app:
        raise ExampleUnavailable(f"no app import string (set `app` in {CONFIG.name} or [tool.fastlaunch] app)")
    module = app.split(":", 1)[0]
    probe = f"import importlib.util, sys; sys.exit(importlib.util.find_spec({module!r}) is None)"
    if subprocess.run([sys.executable, "-c", probe], cwd=config.dir, capture_output=True, timeout=60).returncode:
        raise ExampleUnavailable(f"{module} is not importable (scripts/bootstrap installs example/ with pip -e)")
    return app


def expand(template: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        template = template.replace("{" + key + "}", value)
    return template


def prepare(config: ExampleConfig, env: dict[str, str], log: Path) -> None:
    fastlaunch = str(Path(sys.executable).parent / "fastlaunch")
    args = [expand(arg, {"fastlaunch": fastlaunch}) for arg in config.prepare]
    with log.open("ab") as out:
        done = subprocess.run(args, cwd=config.dir, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=300)
    if done.returncode:
        raise ExampleUnavailable(f"`{' '.join(config.prepare)}` exited with {done.returncode} (see {log})")


def _post(port: int, path: str, body: dict[str, str]) -> int:
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        conn.request("POST", path, json.dumps(body), {"content-type": "application/json"})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def _listed(port: int, config: ExampleConfig) -> list[dict[str, Any]]:
    status, body = http_get(port, config.list_path, timeout=10)
    if status != 200:
        raise ExampleUnavailable(f"GET {config.list_path} answered {status}")
    data = json.loads(body)
    items = data.get("items", []) if isinstance(data, dict) else data
    return [item for item in items if isinstance(item, dict)]


def seed_in_process(config: ExampleConfig, app: str, cwd: Path, env: dict[str, str]) -> None:
    """The posts, posted to the app in a process of their own (httpx's ASGI transport) before any measured server
    starts. Seeded through a measured server, the first of its group (in the first repetition, the same server
    every run) alone would have served the writes and kept what they left in it, which the comparisons between
    servers would read as that server's cost."""
    module, _, attr = app.partition(":")
    script = (
        "import asyncio, httpx, json, sys\n"
        f"from {module} import {attr} as app\n"
        "bodies = json.loads(sys.argv[1])\n"
        "async def main():\n"
        "    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url='http://x') as c:\n"
        "        for body in bodies:\n"
        f"            (await c.post({config.seed_path!r}, json=body)).raise_for_status()\n"
        "asyncio.run(main())\n"
    )
    bodies = [
        {key: expand(value, {"n": str(n)}) for key, value in config.seed_body.items()}
        for n in range(1, config.seed_count + 1)
    ]
    done = subprocess.run(
        [sys.executable, "-c", script, json.dumps(bodies)],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        timeout=300,
    )
    if done.returncode:
        raise ExampleUnavailable(f"seeding failed: {done.stderr.decode()[-500:]}")


def seed(port: int, config: ExampleConfig) -> dict[str, str]:
    """Posts seeded over HTTP up to seed_count, where seed_in_process has not; returns the placeholders for
    endpoints."""
    existing = _listed(port, config)
    for n in range(len(existing) + 1, config.seed_count + 1):
        body = {key: expand(value, {"n": str(n)}) for key, value in config.seed_body.items()}
        status = _post(port, config.seed_path, body)
        if status >= 300:
            raise ExampleUnavailable(f"POST {config.seed_path} answered {status} while seeding")
    posts = existing or _listed(port, config)
    if not posts or "id" not in posts[0]:
        raise ExampleUnavailable(f"GET {config.list_path} listed no post with an id after seeding")
    return {"id": str(posts[len(posts) // 2]["id"])}
