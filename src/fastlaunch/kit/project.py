"""What ``fastlaunch init`` needs to know about a project, found statically (nothing is imported):
dependency manager, the app and where it imports from, Alembic, SQLite, the Python version, and the probe
routes. Every detection failure is an InitError with the fix."""

from __future__ import annotations

import ast
import fnmatch
import re
import sys
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Literal

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name

from fastlaunch.core.alembic_ini import find_alembic_ini
from fastlaunch.core.exceptions import InitError
from fastlaunch.core.pyproject import read_pyproject
from fastlaunch.core.settings import Settings
from fastlaunch.kit.app_settings import AppSettings, read_app_settings
from fastlaunch.kit.database import Database, code_schemes, detect_database, installed_packages
from fastlaunch.kit.deploy_env import EnvEntry, app_environment
from fastlaunch.kit.requirements import (
    REQUIREMENTS,
    Requirements,
    read_requirements,
    requirement_lines,
    requirement_names,
)
from fastlaunch.kit.sources import imports_probes, parsed
from fastlaunch.kit.writable_dirs import Writes, find_writes
from fastlaunch.launcher.discover import AppTarget, discover

Manager = Literal["uv", "poetry", "pdm", "pep621", "requirements"]
# Where the dependency list comes from, per manager (the files the Dockerfile copies before the code).
MANAGER_FILES: dict[Manager, tuple[str, ...]] = {
    "uv": ("pyproject.toml", "uv.lock"),
    "poetry": ("pyproject.toml", "poetry.lock"),
    "pdm": ("pyproject.toml", "pdm.lock"),
    "pep621": ("pyproject.toml",),
    "requirements": ("requirements.txt",),
}
SKIP_DIRS = frozenset({".venv", "venv", ".git", "node_modules", "__pycache__", "tests", "build", "dist", ".tox"})
# python:3.X-slim tags an image can start from; the lowest one the project and fastlaunch both allow is used.
PYTHON_MINORS = range(8, 15)
DATA_DIR = "/data"  # where an SQLite database lives in the image: owned by the app user, volume-ready
# sqlite:///relative/path.db (three slashes): relative to the working directory, /app in the image.
SQLITE_RELATIVE = re.compile(r"^(?P<scheme>sqlite(?:\+\w+)?):///(?!/)(?P<path>[^?]+)$")


@dataclass(frozen=True)
class Sqlite:
    url: str  # as the project has it
    where: str  # where it was found
    image_url: str  # the DATABASE_URL the image sets


@dataclass(frozen=True)
class Member:
    """A uv workspace member: its directory and import root relative to the workspace root, and its name."""

    path: str
    name: str
    import_root: str


@dataclass(frozen=True)
class Project:
    root: Path
    name: str  # a DNS-safe name for services, units and Kubernetes objects
    manager: Manager
    python: str  # "3.11": the python:3.X-slim tag
    python_source: str
    app: AppTarget
    alembic: bool
    healthz: bool
    readyz: bool
    declares_fastlaunch: bool
    import_root: str = ""  # the app's sys.path entry relative to the root ("src"), when not the root itself
    sqlite: Sqlite | None = None
    members: tuple[Member, ...] = ()  # a uv workspace's members, when the root is one
    app_package: str | None = None  # the member that holds the app (uv sync --package)
    database: Database | None = None
    alembic_ini: str = "alembic.ini"  # where it is, relative to the root
    runtime_url: str | None = None  # where a DATABASE_URL for a database server is set here (.env, environment)
    app_settings: AppSettings = AppSettings()

    @property
    def environment(self) -> list[EnvEntry]:
        """What the generated files set in the app's environment (database, required settings)."""
        return app_environment(self.app_settings, self.database)

    @property
    def server_database(self) -> Database | None:
        return self.database if self.database and self.database.server else None

    @property
    def sqlite_names(self) -> list[str]:
        """The names the image sets the SQLite URL under: fastlaunch's DATABASE_URL and the app's own."""
        url = self.app_settings.database_url
        return ["DATABASE_URL"] + ([url.name] if url and url.name != "DATABASE_URL" else [])

    requirements: Requirements = Requirements((REQUIREMENTS,))
    writes: Writes = Writes()

    @property
    def dependency_files(self) -> tuple[str, ...]:
        if self.manager == "requirements":
            return self.requirements.files + (("pyproject.toml",) if self.requirements.installs_self else ())
        return MANAGER_FILES[self.manager] + tuple(f"{m.path}/pyproject.toml" for m in self.members)

    @property
    def app_file(self) -> str:
        return self.app.file.relative_to(self.root).as_posix() if self.app.file else self.app.module

    @property
    def app_env(self) -> str | None:
        """APP_MODULE to bake in when discovery would not find the app on its own in the image."""
        return None if self.app.source.startswith(("automatic", "pyproject")) else self.app.import_string

    @property
    def pythonpath(self) -> str | None:
        """PYTHONPATH for the image, so the app's package imports from /app/<import_root> (src layouts), and a
        workspace's members from theirs (the image installs their dependencies, their code is under /app)."""
        roots = [self.import_root, *(m.import_root for m in self.members)]
        return ":".join(f"/app/{r}" for r in dict.fromkeys(roots) if r) or None

    def _dependencies(self) -> str:
        if not self.members:
            return f"{self.manager} ({', '.join(self.dependency_files)})"
        package = f", installs {self.app_package}'s" if self.app_package else ""
        return f"uv workspace (uv.lock, {len(self.members)} members{package})"

    def summary(self) -> list[tuple[str, str]]:
        app = f"{self.app.import_string} in {self.app_file} ({self.app.source})"
        if self.pythonpath:
            app += f"; the image puts {self.pythonpath} on PYTHONPATH"
        database = "none found (no database driver in the dependencies, no database URL in the code)"
        if self.server_database:
            database = self.server_database.describe()
        elif self.runtime_url:
            database = f"a server's URL in DATABASE_URL ({self.runtime_url}): set at run time, no driver found"
        elif self.database and not self.sqlite:
            database = f"{self.database.describe()}; no relative SQLite path found, set its URL at run time"
        if self.sqlite:
            sqlite = (
                f"SQLite ({self.sqlite.url} in {self.sqlite.where}): the image keeps it in {DATA_DIR}, owned by the "
                f"app user (mount a volume there), DATABASE_URL={self.sqlite.image_url}"
            )
            # With a server's driver installed, the code's SQLite default is what the image runs on by itself;
            # compose and the Secret point the app at the server.
            database = f"{database}; the image alone: {sqlite}" if self.server_database else sqlite
        return [
            ("project", f"{self.name} ({self.root})"),
            ("dependencies", self._dependencies()),
            ("app", app),
            ("python", f"{self.python} ({self.python_source})"),
            ("alembic", self._alembic_summary()),
            ("database", database),
            *self._settings_summary(),
            ("writes", self._writes_summary()),
            ("/healthz", "found" if self.healthz else "not found: no HEALTHCHECK, liveness probes the TCP port"),
            ("/readyz", "found" if self.readyz else "not found: readiness probes /healthz or the TCP port"),
            ("fastlaunch", "in the dependencies" if self.declares_fastlaunch else "added to the image (pinned)"),
        ]

    def _writes_summary(self) -> str:
        if not self.writes.dirs:
            return "no directory under the code found that the app writes to"
        shown = ", ".join(f"{d.path} ({d.where})" for d in self.writes.dirs)
        return f"{shown}: owned by the image's app user (the rest of /app stays read-only to it)"

    def _alembic_summary(self) -> str:
        if not self.alembic:
            return "no alembic.ini in the project (nor two levels down)"
        if self.alembic_ini == "alembic.ini":
            return "yes: the prestart step migrates"
        return f"yes ({self.alembic_ini}): the prestart step migrates with it, run from the project directory"

    def _settings_summary(self) -> list[tuple[str, str]]:
        """One row per setting the app reads, with where it is read and what the generated files do with it."""
        found = self.app_settings.settings
        if not found:
            return [("settings", "none read from the environment found in the code")]
        written = {e.name: e for e in self.environment}
        rows = [("settings", f"{len(found)} read by the app, {sum(s.required for s in found)} required")]
        for setting in found:
            entry = written.get(setting.name)
            what = "required" if setting.required else "optional"
            if entry and entry.filled:
                what += ", set by init (" + entry.reason.split(":")[0] + ")"
            elif entry:
                what += ", a placeholder: set it yourself"
            rows.append(("", f"{setting.name}: {what}; {setting.describe().split(' (', 1)[1][:-1]}"))
        return rows


def detect_manager(root: Path, pyproject: dict[str, object]) -> Manager:
    if (root / "uv.lock").is_file():
        return "uv"
    if workspace := _uv_workspace(root):
        member = root.relative_to(workspace).as_posix()
        raise InitError(
            f"{root} is a member of the uv workspace at {workspace}: its dependencies are locked in "
            f"{workspace / 'uv.lock'}, outside this directory, so the image must be built from the workspace root "
            "(an image from this directory alone would install them unlocked).",
            hint=f"Run fastlaunch init in {workspace} and name the app: --app {member}/<path to the app>.py:app",
        )
    if (root / "poetry.lock").is_file() or "poetry" in _table(pyproject, "tool"):
        return "poetry"
    if (root / "pdm.lock").is_file():
        return "pdm"
    if (root / "requirements.txt").is_file():
        return "requirements"
    for lock, export in (
        ("Pipfile.lock", "pipenv requirements"),
        ("pylock.toml", "uv export --format requirements-txt"),
    ):
        if (root / lock).is_file():
            raise InitError(
                f"The project's dependencies are locked in {lock}, which the generated image cannot install exactly; "
                "installing the unlocked ranges instead would build something other than what was tested.",
                hint=f"Export the lock to requirements.txt ({export} > requirements.txt), then run again.",
            )
    if "project" in pyproject:
        return "pep621"
    return "requirements"


def _uv_workspace(root: Path) -> Path | None:
    """The uv workspace root above ``root`` whose members include it (its uv.lock is the member's lock)."""
    for parent in list(root.parents)[:8]:
        if not (parent / "uv.lock").is_file():
            continue
        workspace = _table(_table(_table(read_pyproject(parent), "tool"), "uv"), "workspace")
        members = workspace.get("members")
        relative = root.relative_to(parent).as_posix()
        if isinstance(members, list) and any(fnmatch.fnmatchcase(relative, str(m)) for m in members):
            return parent
    return None


def workspace_members(root: Path, pyproject: dict[str, object]) -> tuple[Member, ...]:
    """The members of the uv workspace rooted at ``root`` (none when it is not one)."""
    workspace = _table(_table(_table(pyproject, "tool"), "uv"), "workspace")
    patterns = workspace.get("members")
    if not isinstance(patterns, list):
        return ()
    exclude = workspace.get("exclude")
    excluded = {p for pattern in (exclude if isinstance(exclude, list) else []) for p in root.glob(str(pattern))}
    members: list[Member] = []
    for directory in sorted({p for pattern in patterns for p in root.glob(str(pattern))} - excluded):
        if (directory / "pyproject.toml").is_file():
            name = _table(read_pyproject(directory), "project").get("name") or directory.name
            source = directory / "src" if (directory / "src").is_dir() else directory
            members.append(
                Member(directory.relative_to(root).as_posix(), str(name), source.relative_to(root).as_posix())
            )
    return tuple(members)


def _member_of(root: Path, members: tuple[Member, ...], app: AppTarget) -> str | None:
    file = app.file.resolve() if app.file else None
    return next((m.name for m in members if file and file.is_relative_to(root / m.path)), None)


def _table(data: dict[str, object], key: str) -> dict[str, object]:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


@cache
def python_floor() -> int:
    """The lowest Python 3 minor fastlaunch itself installs on (its own Requires-Python)."""
    try:
        requires = (metadata.metadata("fastlaunch").get_all("Requires-Python") or [">=3.11"])[0]
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        requires = ">=3.11"
    return next(m for m in PYTHON_MINORS if _allows(SpecifierSet(requires), m))


def _allows(spec: SpecifierSet, minor: int) -> bool:
    # A minor is allowed when any of its releases is: ==3.12.4 and >=3.11.2 allow 3.12 and 3.11.
    return any(spec.contains(f"3.{minor}.{patch}") for patch in range(30))


def poetry_constraint(text: str) -> list[SpecifierSet]:
    """Poetry's python constraint ("^3.9", "~3.10", ">=3.9 <3.13", "3.11.*", "^3.9 || ^3.11") as PEP 440
    alternatives; raises InvalidSpecifier when it is neither."""
    alternatives: list[SpecifierSet] = []
    for part in re.split(r"\s*\|\|?\s*", text.strip()):
        specs: list[str] = []
        for op, version in re.findall(r"(\^|~=|~|>=|<=|!=|==|>|<|=)?\s*(\d[\w.*]*|\*)", part):
            numbers = [int(n) for n in version.split(".") if n.isdigit()]
            if version == "*":
                continue
            if op == "^":
                bump = next((i for i, n in enumerate(numbers) if n), len(numbers) - 1)
                upper = [*numbers[:bump], numbers[bump] + 1]
                specs += [f">={version}", f"<{'.'.join(map(str, upper))}"]
            elif op == "~" and len(numbers) > 1:
                specs += [f">={version}", f"<{numbers[0]}.{numbers[1] + 1}"]
            elif op == "~":
                specs += [f">={version}", f"<{numbers[0] + 1}"]
            else:
                specs.append(f"{op if op not in ('', '=') else '=='}{version}")
        alternatives.append(SpecifierSet(",".join(specs)))
    return alternatives


def detect_python(root: Path, pyproject: dict[str, object]) -> tuple[str, str]:
    """The python:3.X-slim tag and why: the project's own choice, raised to fastlaunch's floor (said so)."""
    floor = python_floor()
    pinned = root / ".python-version"
    if pinned.is_file() and (m := re.search(r"3\.(\d+)", pinned.read_text())):
        return _at_least(int(m.group(1)), floor, f".python-version {m.group(0)}")
    requires = _table(pyproject, "project").get("requires-python")
    poetry_python = _table(_table(_table(pyproject, "tool"), "poetry"), "dependencies").get("python")
    for value, label, parse in (
        (requires, "requires-python", lambda t: [SpecifierSet(t)]),
        (poetry_python, "tool.poetry python", poetry_constraint),
    ):
        if not isinstance(value, str):
            continue
        try:
            alternatives = parse(value)
        except InvalidSpecifier:
            raise InitError(
                f"{label} {value!r} in pyproject.toml is not a version specifier.",
                hint="Fix it (for example >=3.11), then run fastlaunch init again.",
            ) from None
        allowed = [m for m in PYTHON_MINORS if any(_allows(spec, m) for spec in alternatives)]
        usable = [m for m in allowed if m >= floor]
        if not usable:
            raise InitError(
                f"{label} {value!r} allows no Python that fastlaunch runs on (3.{floor} or newer): the image "
                "could not install it.",
                hint=f"Allow Python 3.{floor}+ in pyproject.toml (for example >=3.{floor}), then run again.",
            )
        source = f"{label} {value!r}"
        if allowed[0] < floor and usable[0] == floor:
            source += f"; 3.{allowed[0]} raised to 3.{floor}, the oldest Python fastlaunch installs on"
        elif allowed[0] < floor:
            source += f"; 3.{allowed[0]} skipped: fastlaunch installs on 3.{floor} or newer"
        return f"3.{usable[0]}", source
    return _at_least(sys.version_info.minor, floor, "the running interpreter")


def _at_least(minor: int, floor: int, source: str) -> tuple[str, str]:
    if minor < floor:
        return f"3.{floor}", f"{source}; raised to 3.{floor}, the oldest Python fastlaunch installs on"
    return f"3.{minor}", source


def _dependency_names(root: Path, pyproject: dict[str, object]) -> set[str]:
    """The canonical names of what the image installs: the requirements files, else pyproject.toml's lists."""
    requirements = read_requirements(root)
    specs = requirement_lines(root, requirements)
    deps = _table(pyproject, "project").get("dependencies")
    # A requirements.txt without a uv or Poetry lock is all the image installs (a lock of pyproject.toml's list).
    if isinstance(deps, list) and detect_manager(root, pyproject) != "requirements":
        specs += [str(d) for d in deps]
    optional = _table(_table(pyproject, "project"), "optional-dependencies")
    for extra in requirements.extras:
        listed = optional.get(extra)
        specs += [str(d) for d in listed] if isinstance(listed, list) else []
    poetry = _table(_table(_table(pyproject, "tool"), "poetry"), "dependencies")
    return requirement_names(specs) | {canonicalize_name(name) for name in poetry}


def python_files(root: Path) -> list[Path]:
    found: list[Path] = []
    for path in sorted(root.rglob("*.py")):
        if not SKIP_DIRS.intersection(path.relative_to(root).parts[:-1]):
            found.append(path)
    return found[:500]  # a bound for huge trees: the routes live near the app


def _constants(files: list[Path]) -> list[tuple[Path, str]]:
    found: list[tuple[Path, str]] = []
    for file in files:
        if (tree := parsed(file)) is None:
            continue
        found += [(file, n.value) for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    return found


def routes_declared(files: list[Path]) -> set[str]:
    """String constants that look like the probe paths, or fastlaunch.probes being used (it serves both)."""
    found: set[str] = set()
    for file in files:
        if (tree := parsed(file)) is None:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in ("/healthz", "/readyz"):
                found.add(node.value)
            elif imports_probes(node):
                found |= {"/healthz", "/readyz"}
    return found


def detect_sqlite(root: Path, settings: Settings, files: list[Path]) -> Sqlite | None:
    """A SQLite database at a path relative to the working directory: /app in the image, which the app user
    cannot write. Found in DATABASE_URL (environment, .env, [tool.fastlaunch]), else as a default in the code or
    alembic.ini; a DATABASE_URL for another database means the code's SQLite default is for development only."""
    candidates: list[tuple[str, str]] = []
    if settings.database_url:
        candidates.append((settings.database_url, f"DATABASE_URL ({settings.source('database_url').describe()})"))
    else:
        candidates += [(value, file.relative_to(root).as_posix()) for file, value in _constants(files)]
        ini = find_alembic_ini(root)
        if ini and (found := re.search(r"^sqlalchemy\.url\s*=\s*(\S+)", ini.read_text(), re.M)):
            candidates.append((found.group(1), ini.relative_to(root).as_posix()))
    for url, where in candidates:
        if match := SQLITE_RELATIVE.match(url.strip()):
            name = Path(match.group("path")).name
            return Sqlite(url, where, f"{match.group('scheme')}:///{DATA_DIR}/{name}")
    return None


def import_root(root: Path, app: AppTarget) -> str:
    """The app's sys.path entry relative to the root; an InitError when the image would not contain it."""
    inside = app.file is None or (app.file.is_relative_to(root) and app.path.is_relative_to(root))
    if not inside and (root / "__init__.py").is_file() and app.path == root.parent:
        raise InitError(
            f"{root} is itself a Python package (it holds __init__.py) and the app's module imports it as "
            f"{app.module}: the image must hold the directory {root.name}/, so it is built from {root.parent}.",
            hint=f"Run fastlaunch init in {root.parent} (the app is then {app.import_string}).",
        )
    if not inside or SKIP_DIRS.intersection(app.path.relative_to(root).parts):
        raise InitError(
            f"The app {app.import_string} is imported from {app.file}, outside the project {root}: the image, "
            "built from the project, would not contain it.",
            hint="Run fastlaunch init in the directory that holds the app's code, or pass --app as a file inside "
            "it (e.g. --app src/mypkg/main.py:app).",
        )
    relative = app.path.relative_to(root).as_posix()
    return "" if relative == "." else relative


def _name(root: Path, pyproject: dict[str, object]) -> str:
    raw = _table(pyproject, "project").get("name") or _table(_table(pyproject, "tool"), "poetry").get("name")
    name = re.sub(r"[^a-z0-9-]+", "-", str(raw or root.resolve().name).lower()).strip("-")
    return (name or "app")[:40].strip("-")


def detect(settings: Settings, root: Path | None = None) -> Project:
    root = (root or settings.project_dir).resolve()
    pyproject: dict[str, object] = read_pyproject(root)
    python, python_source = detect_python(root, pyproject)
    files = python_files(root)
    routes = routes_declared(files)
    app = discover(settings, root, check_imports=False)
    members = workspace_members(root, pyproject) if (root / "uv.lock").is_file() else ()
    texts = [(f.relative_to(root).as_posix(), v) for f, v in _constants(files)]
    ini = find_alembic_ini(root)
    for path in (ini, root / ".env.example"):
        texts += [(path.name, path.read_text(errors="replace"))] if path and path.is_file() else []
    database = detect_database(installed_packages(root, _dependency_names(root, pyproject)), code_schemes(texts))
    sqlite = detect_sqlite(root, settings, files)
    runtime_url = None
    if settings.database_url and not settings.database_url.startswith("sqlite"):
        runtime_url = settings.source("database_url").describe()
        database = database if database and database.server else None
    return Project(
        root=root,
        name=_name(root, pyproject),
        manager=detect_manager(root, pyproject),
        python=python,
        python_source=python_source,
        app=app,
        alembic=ini is not None,
        alembic_ini=ini.relative_to(root).as_posix() if ini else "alembic.ini",
        healthz="/healthz" in routes,
        readyz="/readyz" in routes,
        declares_fastlaunch="fastlaunch" in _dependency_names(root, pyproject),
        import_root=import_root(root, app),
        sqlite=sqlite,
        members=members,
        app_package=_member_of(root, members, app),
        database=database,
        runtime_url=runtime_url,
        requirements=read_requirements(root),
        writes=find_writes(root, files),
        app_settings=read_app_settings(root, files),
    )
