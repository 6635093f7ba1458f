"""The paths an app serves, read statically: FastAPI/Starlette route decorators and ``add_api_route`` /
``add_route`` / ``Route(...)`` calls, joined with their router's prefix (``APIRouter(prefix=...)`` and
``include_router(..., prefix=...)``), and the probes of ``fastlaunch.probes`` (``/healthz``, ``/readyz`` unless
the app renames them)."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

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


def read_routes(files: list[Path]) -> Routes:
    routes = Routes()
    own: dict[str, str] = {}  # router variable -> APIRouter(prefix=...)
    included: dict[str, set[str]] = {}  # router variable -> include_router(..., prefix=...)
    declared: list[tuple[str, str]] = []  # (router variable, path)
    for file in files:
        try:
            tree = ast.parse(file.read_bytes())
        except (SyntaxError, ValueError, OSError):
            continue
        routes.files += 1
        uses_probes = False
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("fastlaunch.probes"):
                uses_probes = True
            if isinstance(node, ast.ImportFrom) and node.module == "fastlaunch":
                uses_probes |= any(a.name == "probes" for a in node.names)
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
                maker = ast.unparse(node.value.func).split(".")[-1]
                prefix = _string(_keyword(node.value, "prefix"))
                if maker in ("APIRouter", "Router") and len(node.targets) == 1:
                    own[ast.unparse(node.targets[0])] = prefix or ""
                if maker == "Probes":  # fastlaunch.probes.Probes(healthz=..., readyz=...)
                    for name in ("healthz", "readyz"):
                        routes.paths.add(_string(_keyword(node.value, name)) or f"/{name}")
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else ast.unparse(func)
            owner = ast.unparse(func.value) if isinstance(func, ast.Attribute) else ""
            path = _string(node.args[0]) if node.args else _string(_keyword(node, "path"))
            if name == "include_router" and node.args:
                router = ast.unparse(node.args[0]).split(".")[-1]
                included.setdefault(router, set()).add(_string(_keyword(node, "prefix")) or "")
            elif path is not None and (name in ROUTE_METHODS and owner or name in ROUTE_CALLS):
                declared.append((owner, path))
            elif name == "Mount" and path is not None:
                declared.append(("", path.rstrip("/") + "/{rest}"))
        if uses_probes:
            routes.paths |= {"/healthz", "/readyz"}
    for owner, path in declared:
        # Routers are matched by variable name across files (`from .routes import router`).
        name = owner.split(".")[-1]
        for outer in included.get(name) or {""}:
            routes.paths.add(outer + own.get(name, "") + path or "/")
    return routes
