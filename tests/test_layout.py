"""The package layout's rules, read from the source (every import, including those inside functions and under
``if TYPE_CHECKING:``, and every dotted-path string a loader imports), and the public import paths apps and
deployments rely on."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest
from packaging.version import Version
from support import FASTLAUNCH, ROOT, free_port, running, wait_for_workers

PACKAGE = ROOT / "src" / "fastlaunch"
PARTS = ("cli", "core", "launcher", "worker", "prestart", "kit")
HELPERS = ("probes", "offline_docs", "request_id")

# What each part may import from fastlaunch (besides itself).
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "worker": {"core", "request_id"},
    "prestart": {"core"},
    "launcher": {"core", "worker", "prestart"},
    "kit": {"core", "launcher", "worker", "prestart"},  # check reads max_connections through the prestart driver
    "cli": {"core", "launcher", "worker", "prestart", "kit", "request_id"},
    "probes": {"core"},  # core.shutdown: /readyz answers 503 during SHUTDOWN_DELAY
    "offline_docs": set(),
    "request_id": {"core"},  # core.request_context: the id every log line carries
}
CLI_LIBRARIES = {"typer", "rich", "click"}
APP_LIBRARIES = {"fastapi", "pydantic", "starlette"}
# Third-party imports each part must never make: the processes that serve carry no CLI library, and the
# launcher must coexist with any FastAPI/pydantic pin (it never imports the app's stack).
FORBIDDEN: dict[str, set[str]] = {
    "core": CLI_LIBRARIES | APP_LIBRARIES,
    "worker": CLI_LIBRARIES | APP_LIBRARIES,
    "prestart": CLI_LIBRARIES | APP_LIBRARIES,
    "launcher": CLI_LIBRARIES | APP_LIBRARIES,
    "kit": APP_LIBRARIES,
    "cli": APP_LIBRARIES,
    "request_id": CLI_LIBRARIES | APP_LIBRARIES,
}


def part_of(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


# A string that names a module or an object in one ("fastlaunch.worker.access_log.BatchFileHandler",
# "fastlaunch.worker:UvicornWorker"): dictConfig "()" and "class" entries, Gunicorn's worker_class, import_module()
# arguments. Loading it imports the module as surely as an import statement does.
DOTTED = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+(:[A-Za-z_][\w.]*)?")


def _named_module(text: str) -> str | None:
    """The module a dotted-path string makes its loader import, when it names fastlaunch's parts or a library a
    part must not import."""
    if not DOTTED.fullmatch(text):
        return None
    module = text.partition(":")[0]
    top, _, rest = module.partition(".")
    if top == "fastlaunch":
        # A logger name such as "fastlaunch.access" names no module: only a part or helper is a dependency.
        return module if rest.split(".")[0] in (*PARTS, *HELPERS) else None
    return module if top in CLI_LIBRARIES | APP_LIBRARIES else None


def _compared(node: ast.AST) -> list[ast.expr]:
    """Strings a name is compared with (``==``, ``in``, ``startswith``), which nothing loads: the kit looking for
    ``fastlaunch.probes`` in an app's own imports."""
    if isinstance(node, ast.Compare):
        return [node.left, *node.comparators]
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ("startswith", "endswith")
    ):
        return list(node.args)
    return []


def imports(path: Path) -> list[tuple[int, str]]:
    """Every module a file imports (absolute names): import statements anywhere, ``if TYPE_CHECKING:`` blocks
    included (a type a part names is one it depends on), and dotted-path strings that a loader imports."""
    tree = ast.parse(path.read_text(), str(path))
    package = ".".join(("fastlaunch", *path.relative_to(PACKAGE).with_suffix("").parts[:-1]))
    found: list[tuple[int, str]] = []
    compared = {id(c) for node in ast.walk(tree) for c in _compared(node)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            if base == "fastlaunch":  # from fastlaunch import x: x is the module
                found.extend((node.lineno, f"fastlaunch.{alias.name}") for alias in node.names)
            else:
                found.append((node.lineno, base))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in compared:
            module = _named_module(node.value)
            if module:
                found.append((node.lineno, module))
    return found


def violations(path: Path) -> list[str]:
    part = part_of(path)
    problems = []
    for line, name in imports(path):
        where = f"{path.relative_to(ROOT)}:{line} imports {name}"
        top = name.split(".")[0]
        if top == "fastlaunch":
            target = name.split(".")[1] if "." in name else ""
            if target in ("", "__version__", part):
                continue
            if target not in ALLOWED[part]:
                problems.append(f"{where}: {part} may import only {sorted(ALLOWED[part]) or 'itself'}")
        elif top in FORBIDDEN.get(part, set()):
            problems.append(f"{where}: {part} must not import {top}")
    return problems


def test_the_package_shows_its_parts() -> None:
    entries = {p.name for p in PACKAGE.iterdir() if not p.name.startswith((".", "__pycache__"))}
    modules = {p.removesuffix(".py") for p in entries if p.endswith(".py")} - {"__init__", "__main__"}
    packages = {p for p in entries if (PACKAGE / p / "__init__.py").is_file()}
    assert packages == set(PARTS)
    assert modules == set(HELPERS)
    for part in PARTS:
        doc = ast.get_docstring(ast.parse((PACKAGE / part / "__init__.py").read_text()))
        assert doc and "import" in doc.lower(), f"{part}/__init__.py must say what lives there and what it may import"


def test_the_contributing_page_states_these_rules() -> None:
    page = (ROOT / "docs" / "contributing.md").read_text().splitlines()
    start = page.index("| part | may import from fastlaunch |") + 2
    rows = [[cell.strip(" `") for cell in line.strip("|").split("|")] for line in page[start:]]
    stated = {
        row[0]: set() if row[1] == "nothing" else {name.strip() for name in row[1].split(",")}
        for row in rows[: next(i for i, line in enumerate(page[start:]) if not line.startswith("|"))]
    }
    assert stated == ALLOWED


def test_every_import_follows_the_layout_rules() -> None:
    problems = [
        p
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.parent != PACKAGE or path.stem in HELPERS
        for p in violations(path)
    ]
    assert not problems, "\n".join(problems)


def checked(tmp_path: Path, source: str, part: str) -> list[str]:
    """The checker's findings on a file placed where a real module lives."""
    global PACKAGE
    fake = tmp_path / "src" / "fastlaunch"
    (fake / part).parent.mkdir(parents=True)
    (fake / part).write_text(source)
    saved, root = PACKAGE, ROOT
    try:
        PACKAGE = fake
        globals()["ROOT"] = tmp_path
        return violations(fake / part)
    finally:
        PACKAGE = saved
        globals()["ROOT"] = root


@pytest.mark.parametrize(
    ("source", "part", "expected"),
    [
        ("import typer\n", "worker/uvicorn_worker.py", "worker must not import typer"),
        ("def f():\n    from fastapi import FastAPI\n", "launcher/serve.py", "launcher must not import fastapi"),
        ("from fastlaunch.cli.errors import rendered_errors\n", "launcher/serve.py", "launcher may import only"),
        ("from fastlaunch.launcher import workers\n", "worker/metrics.py", "worker may import only"),
        ("from ..kit import lint\n", "prestart/steps.py", "prestart may import only"),
        ("from fastlaunch import kit\n", "core/settings.py", "core may import only itself"),
        # A type named for the type checker only is a dependency too.
        (
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from fastlaunch.worker.access_log import Entry\n",
            "core/log_formats.py",
            "core/log_formats.py:3 imports fastlaunch.worker.access_log: core may import only itself",
        ),
        # Dotted paths that a loader imports: dictConfig entries, Gunicorn's worker class, import_module().
        (
            'H = {"class": "fastlaunch.worker.access_log.BatchFileHandler"}\n',
            "core/logs.py",
            "imports fastlaunch.worker.access_log.BatchFileHandler: core may import only itself",
        ),
        ('F = {"()": "fastlaunch.request_id.RequestIdFilter"}\n', "core/logs.py", "core may import only itself"),
        ('DEFAULT = "fastlaunch.worker:UvicornWorker"\n', "core/settings.py", "imports fastlaunch.worker: core"),
        (
            'import importlib\nimportlib.import_module("fastlaunch.cli.errors")\n',
            "worker/metrics.py",
            "worker may import only",
        ),
        ('APP = "fastapi.applications:FastAPI"\n', "launcher/discover.py", "launcher must not import fastapi"),
    ],
)
def test_a_broken_rule_is_reported(tmp_path: Path, source: str, part: str, expected: str) -> None:
    assert any(expected in p for p in checked(tmp_path, source, part)), checked(tmp_path / "again", source, part)


@pytest.mark.parametrize(
    ("source", "part"),
    [
        ('import logging\nlog = logging.getLogger("fastlaunch.access")\n', "core/logs.py"),  # a logger, not a module
        (
            'def probes(module: str) -> bool:\n    return module.startswith("fastlaunch.probes")\n',
            "kit/project.py",
        ),
        ('def is_cli(name: str) -> bool:\n    return name == "fastlaunch.cli"\n', "core/settings.py"),
        ('HELP = "Unset: fastlaunch.worker.UvicornWorker, the default."\n', "core/settings.py"),  # prose
        ("from fastlaunch.core.settings import Settings\n", "worker/options.py"),
    ],
)
def test_what_loads_nothing_is_not_reported(tmp_path: Path, source: str, part: str) -> None:
    assert checked(tmp_path, source, part) == []


@pytest.mark.parametrize(
    "path",
    [
        "fastlaunch.probes:Probes",
        "fastlaunch.offline_docs:install",
        "fastlaunch.request_id:get_request_id",
        "fastlaunch.request_id:RequestIdFilter",
        "fastlaunch.worker:UvicornWorker",
        "fastlaunch.cli.entry:main",
        "fastlaunch:__version__",
    ],
)
def test_public_names_import(path: str) -> None:
    module, _, name = path.partition(":")
    value = getattr(importlib.import_module(module), name)  # AttributeError when a public name moved away
    assert callable(value) or (name == "__version__" and Version(value) >= Version("0.1")), (path, value)


def test_the_launchers_worker_class_names_the_public_path() -> None:
    from gunicorn.util import load_class

    from fastlaunch.launcher.worker_class import FASTLAUNCH_WORKER
    from fastlaunch.worker.uvicorn_worker import UvicornWorker

    assert load_class(FASTLAUNCH_WORKER) is UvicornWorker


def test_the_master_never_imports_the_app(tmp_path: Path) -> None:
    # Each process that imports the app leaves its PID: the master (the PID we started) must not be one.
    (tmp_path / "main.py").write_text(
        "import os, pathlib\n"
        "pathlib.Path('imported-by').open('a').write(f'{os.getpid()}\\n')\n"
        "async def app(scope, receive, send):\n"
        "    if scope['type'] != 'http':\n"
        "        return\n"
        "    await send({'type': 'http.response.start', 'status': 200, 'headers': []})\n"
        "    await send({'type': 'http.response.body', 'body': b'ok'})\n"
    )
    port = free_port()
    args = [FASTLAUNCH, "run", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"]
    with running(args, cwd=tmp_path, log=tmp_path / "server.log", ready_url=f"http://127.0.0.1:{port}/") as proc:
        workers = wait_for_workers(proc.pid, 2)
        importers = {int(pid) for pid in (tmp_path / "imported-by").read_text().split()}
    assert proc.pid not in importers
    assert importers <= set(workers) and importers


# worker/uvicorn_worker.py is glue: the worker class only hands each job to the module named for it
# (uvicorn_config, uvicorn_loggers, signals, gc_tuning, app_stack, reports, serve_loop, draining_server).
GLUE_STATEMENTS = 8  # per method: a job written out again takes more, or a loop


def glue_problems(source: str) -> list[str]:
    """What in a worker-class module is more than glue: anything at module level but imports, the docstring and
    the one class; in the class, a loop, a nested function or a method longer than GLUE_STATEMENTS."""
    problems: list[str] = []
    for node in ast.parse(source).body:
        if isinstance(node, ast.ClassDef) and node.name == "UvicornWorker":
            for item in node.body:
                if not isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    continue
                inner = [n for stmt in item.body for n in ast.walk(stmt)]
                statements = sum(isinstance(n, ast.stmt) for n in inner)
                if statements > GLUE_STATEMENTS:
                    problems.append(f"{item.name}() has {statements} statements (at most {GLUE_STATEMENTS})")
                if any(isinstance(n, ast.For | ast.AsyncFor | ast.While | ast.comprehension) for n in inner):
                    problems.append(f"{item.name}() loops")
                if any(isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) for n in inner):
                    problems.append(f"{item.name}() defines a function or class")
        elif not isinstance(node, ast.Import | ast.ImportFrom) and not (
            isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        ):
            problems.append(f"line {node.lineno}: {type(node).__name__} outside the worker class")
    return problems


def test_the_worker_class_is_glue() -> None:
    assert not glue_problems((PACKAGE / "worker" / "uvicorn_worker.py").read_text())


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("YOUNG_THRESHOLD = 2000\n", "Assign outside the worker class"),
        ("def _tune_gc():\n    pass\n", "FunctionDef outside the worker class"),
        ("class DrainingServer:\n    pass\n", "ClassDef outside the worker class"),
        (
            "class UvicornWorker:\n    def _own_loggers(self):\n        for name in names:\n            pass\n",
            "_own_loggers() loops",
        ),
        (
            "class UvicornWorker:\n    def _install(self):\n        def quick_stop():\n            pass\n",
            "_install() defines a function",
        ),
        ("class UvicornWorker:\n    def _serve(self):\n" + "        x = 1\n" * 9, "_serve() has 9 statements"),
    ],
)
def test_a_job_back_in_the_worker_class_is_reported(source: str, expected: str) -> None:
    problems = glue_problems(source)
    assert any(expected in p for p in problems), problems
