"""Directories an app writes to under its own code, found statically: ``os.makedirs``/``Path.mkdir``, log file
handlers, ``open(..., "w")`` and ``"filename"`` entries of logging configs, with a path that is a literal,
relative to the working directory or built from ``__file__``. The generated image makes those writable for its
non-root user (the code itself stays read-only to it); a path that cannot be read is reported instead."""

from __future__ import annotations

import ast
import posixpath
from dataclasses import dataclass
from pathlib import Path

from fastlaunch.kit.sources import parsed

MAKES_DIR = frozenset({"makedirs", "mkdir"})
WRITES_FILE = frozenset({"FileHandler", "RotatingFileHandler", "TimedRotatingFileHandler", "WatchedFileHandler"})
WRITE_MODES = ("w", "a", "x", "+")


@dataclass(frozen=True)
class WritableDir:
    path: str  # relative to the project root (the image's /app)
    where: str  # file:line


@dataclass(frozen=True)
class Unresolved:
    where: str
    code: str  # the expression naming the path, as written


@dataclass(frozen=True)
class Writes:
    dirs: tuple[WritableDir, ...] = ()
    unresolved: tuple[Unresolved, ...] = ()


def find_writes(root: Path, files: list[Path]) -> Writes:
    dirs: dict[str, WritableDir] = {}
    unresolved: list[Unresolved] = []
    for file in files:
        if (tree := parsed(file)) is None:
            continue
        here = file.parent.relative_to(root).as_posix()
        names = _module_paths(tree, here)
        for node in ast.walk(tree):
            target = _written(node)
            if target is None:
                continue
            expression, is_dir = target
            where = f"{file.relative_to(root).as_posix()}:{getattr(node, 'lineno', 0)}"
            path = _path(expression, here, names)
            if path is None:
                # open() of a computed path is most often a file the user chose, not a directory of the app's.
                if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "open"):
                    unresolved.append(Unresolved(where, ast.unparse(expression)))
                continue
            directory = posixpath.normpath(path if is_dir else posixpath.dirname(path) or ".")
            if directory.startswith(("/", "..")):
                continue  # outside the code (/tmp, /var/log): not the image's business
            if directory != ".":
                dirs.setdefault(directory, WritableDir(directory, where))
    return Writes(tuple(dirs.values()), tuple(unresolved))


def _written(node: ast.AST) -> tuple[ast.expr, bool] | None:
    """The path expression a node writes to, and whether it names a directory (else a file)."""
    if isinstance(node, ast.Call):
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
        if name in MAKES_DIR and isinstance(func, ast.Attribute) and node.args and _is_os(func.value):
            return node.args[0], True
        if name == "mkdir" and isinstance(func, ast.Attribute) and not _is_os(func.value):
            return func.value, True  # Path(...).mkdir()
        if name in WRITES_FILE and node.args:
            return node.args[0], False
        if name == "open" and isinstance(func, ast.Name) and len(node.args) >= 2:
            mode = node.args[1]
            if (
                isinstance(mode, ast.Constant)
                and isinstance(mode.value, str)
                and any(m in mode.value for m in WRITE_MODES)
            ):
                return node.args[0], False
    if isinstance(node, ast.Dict):
        for key, value in zip(node.keys, node.values, strict=True):
            if isinstance(key, ast.Constant) and key.value == "filename":
                return value, False
    return None


def _is_os(node: ast.expr) -> bool:
    return (isinstance(node, ast.Name) and node.id == "os") or (
        isinstance(node, ast.Attribute) and node.attr == "path" and _is_os(node.value)
    )


def _module_paths(tree: ast.Module, here: str) -> dict[str, str]:
    """Module-level names bound to a path this reader understands (BASE_DIR = Path(__file__).parent)."""
    names: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            path = _path(node.value, here, names)
            if path is not None:
                names[node.targets[0].id] = path
    return names


def _path(node: ast.expr, here: str, names: dict[str, str]) -> str | None:
    """The path an expression names, relative to the root ("logs", "app/logs"), or None when unknown."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        if node.id == "__file__":
            return posixpath.join(here, "__file__")
        return names.get(node.id)
    if isinstance(node, ast.Call):
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
        args = [_path(a, here, names) for a in node.args]
        if name in ("Path", "PurePath") and args and None not in args:
            return posixpath.join(*[a for a in args if a is not None])
        if name == "join" and isinstance(func, ast.Attribute) and _is_os(func.value) and args and None not in args:
            return posixpath.join(*[a for a in args if a is not None])
        if name in ("dirname", "abspath", "realpath", "resolve", "absolute") and (
            args or name in ("resolve", "absolute")
        ):
            inner = args[0] if args else _path(func.value, here, names) if isinstance(func, ast.Attribute) else None
            return posixpath.dirname(inner) if inner is not None and name == "dirname" else inner
    if isinstance(node, ast.Attribute) and node.attr == "parent":
        inner = _path(node.value, here, names)
        return posixpath.dirname(inner) if inner is not None else None
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
        left, right = _path(node.left, here, names), _path(node.right, here, names)
        return posixpath.join(left, right) if left is not None and right is not None else None
    return None
