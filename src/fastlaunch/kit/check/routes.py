"""The paths an app serves, read statically: FastAPI/Starlette route decorators and ``add_api_route`` /
``add_route`` / ``Route(...)`` calls, joined with their router's prefix (``APIRouter(prefix=...)`` and
``include_router(..., prefix=...)``), and the probes of ``fastlaunch.probes`` (``/healthz``, ``/readyz`` unless
the app renames them)."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

from fastlaunch.kit.sources import imports_probes, parsed

ROUTE_METHODS = {"get", "post", "put", "patch", "delete", "head", "options", "api_route", "route", "websocket"}
ROUTE_CALLS = {"add_api_route", "add_route", "Route", "APIRoute", "add_websocket_route"}


@dataclass
class Routes:
    paths: set[str] = field(default_factory=set)  # templates as written: "/posts/{post_id}"
    files: int = 0

    def serves(self, path: str) -> bool:
        path = path.split("?")[0] or "/"
        for template in self.paths:
            pattern = re.sub(r"\\\{[^}]*\\\}", "[^/]+", re.escape(template))
            if re.fullmatch(pattern, path) or re.fullmatch(pattern, path.rstrip("/") or "/"):
                return True
        return False


def _string(node: ast.expr | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


class _Names:
    """Which router a name in one file refers to: ``stem.variable`` of the module that defines it, so that
    ``items.router`` and ``users.router`` stay apart."""

    def __init__(self, stem: str, tree: ast.Module) -> None:
        self.stem = stem
        self.variables: dict[str, str] = {}  # from m import router as r -> r: "m.router"
        self.modules: dict[str, str] = {}  # from pkg import items / import pkg.items as it -> "items"
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                module = (node.module or "").split(".")[-1]
                for alias in node.names:
                    self.variables[alias.asname or alias.name] = f"{module}.{alias.name}"
                    self.modules[alias.asname or alias.name] = alias.name
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    self.modules[alias.asname or alias.name] = alias.name.split(".")[-1]

    def key(self, expression: str) -> str:
        parts = expression.split(".")
        if len(parts) == 1:
            return self.variables.get(parts[0], f"{self.stem}.{parts[0]}")
        return f"{self.modules.get(parts[0], parts[-2])}.{parts[-1]}"


def _mounts(key: str, own: dict[str, str], parents: dict[str, set[tuple[str, str]]], seen: frozenset[str]) -> set[str]:
    """Every prefix under which a router's routes are served: its includers' mounts + their prefix + its own."""
    if key in seen or not parents.get(key):
        return {own.get(key, "")}
    return {
        mount + prefix + own.get(key, "")
        for outer, prefix in parents[key]
        for mount in _mounts(outer, own, parents, seen | {key})
    }


def read_routes(files: list[Path]) -> Routes:
    routes = Routes()
    own: dict[str, str] = {}  # router -> APIRouter(prefix=...)
    parents: dict[str, set[tuple[str, str]]] = {}  # router -> (includer, include_router(..., prefix=...))
    declared: list[tuple[str, str]] = []  # (router, path)
    for file in files:
        tree = parsed(file)
        if tree is None:
            continue
        routes.files += 1
        names = _Names(file.stem, tree)
        uses_probes = False
        for node in ast.walk(tree):
            uses_probes |= imports_probes(node)
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
                maker = ast.unparse(node.value.func).split(".")[-1]
                prefix = _string(_keyword(node.value, "prefix"))
                if maker in ("APIRouter", "Router") and len(node.targets) == 1:
                    own[f"{file.stem}.{ast.unparse(node.targets[0])}"] = prefix or ""
                if maker == "Probes":  # fastlaunch.probes.Probes(healthz=..., readyz=...)
                    for name in ("healthz", "readyz"):
                        routes.paths.add(_string(_keyword(node.value, name)) or f"/{name}")
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else ast.unparse(func)
            owner = names.key(ast.unparse(func.value)) if isinstance(func, ast.Attribute) else ""
            path = _string(node.args[0]) if node.args else _string(_keyword(node, "path"))
            if path and not path.startswith("/"):  # dict.get("key"), not a route
                path = None
            if name == "include_router" and node.args and owner:
                router = names.key(ast.unparse(node.args[0]))
                parents.setdefault(router, set()).add((owner, _string(_keyword(node, "prefix")) or ""))
            elif path is not None and (name in ROUTE_METHODS and owner or name in ROUTE_CALLS):
                declared.append((owner, path))
            elif name == "Mount" and path is not None:
                declared.append(("", path.rstrip("/") + "/{rest}"))
        if uses_probes:
            routes.paths |= {"/healthz", "/readyz"}
    for owner, path in declared:
        for mount in _mounts(owner, own, parents, frozenset()):
            routes.paths.add(mount + path or "/")
    return routes
