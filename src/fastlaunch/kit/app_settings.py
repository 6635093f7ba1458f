"""The environment settings an app reads, found statically (the app is never imported): pydantic-settings and
pydantic v1 ``BaseSettings`` fields (with ``env_prefix``, aliases, ``env_nested_delimiter``), Starlette
``Config(...)`` calls and ``os.environ[...]`` / ``os.getenv(...)`` / ``environ.get(...)``, each with whether the
app starts without it (a default) and where it was read.

``fastlaunch init`` uses it to write the database URL under the name the app reads and a placeholder for every
setting the app requires; ``fastlaunch check`` and other generators can reuse :func:`read_app_settings`."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from fastlaunch.kit.sources import parsed

Reader = Literal["pydantic", "starlette", "environ"]
# Names that hold a whole database URL, matched on the name without its prefix.
URL_NAME = re.compile(r"(^|_)(DATABASE|DB|SQLALCHEMY_DATABASE|POSTGRES|PG|MYSQL|MARIADB|SQL)_(URL|URI|DSN)$")
# The parts a database URL is assembled from: the last word of the name -> its role.
PART_ROLES = {
    "SERVER": "host",
    "HOST": "host",
    "HOSTNAME": "host",
    "PORT": "port",
    "USER": "user",
    "USERNAME": "user",
    "PASSWORD": "password",
    "PASS": "password",
    "DB": "name",
    "NAME": "name",
    "DATABASE": "name",
}
# A group of parts is a database's only when its prefix says so (APP_NAME and SMTP_USER are not).
PART_PREFIX = re.compile(r"(^|_)(POSTGRES|POSTGRESQL|PG|DB|DATABASE|MYSQL|MARIADB|SQL)_$")
SECRET_WORDS = re.compile(r"PASSWORD|SECRET|TOKEN|KEY|PASS$|CREDENTIAL|DSN|URL|URI", re.I)
BASE_SETTINGS = frozenset({"BaseSettings"})
BASE_MODELS = frozenset({"BaseModel"})


@dataclass(frozen=True)
class AppSetting:
    """One environment variable the app reads."""

    name: str  # as the environment must hold it (upper-cased when pydantic matches case-insensitively)
    required: bool  # the app fails to start without it
    where: str  # file:line of the field or the call
    reader: Reader
    default: str | None = None  # a literal default, when the code has one

    @property
    def secret(self) -> bool:
        return bool(SECRET_WORDS.search(self.name))

    def describe(self) -> str:
        kind = {"pydantic": "BaseSettings field", "starlette": "Starlette Config", "environ": "os.environ"}
        return f"{self.name} ({kind[self.reader]}, {self.where}{'' if self.required else ', has a default'})"


@dataclass(frozen=True)
class DatabaseParts:
    """A database URL the app assembles from parts: role ("host", "port", "user", "password", "name") -> the
    setting holding it."""

    prefix: str
    parts: dict[str, AppSetting]


@dataclass(frozen=True)
class AppSettings:
    settings: tuple[AppSetting, ...] = ()

    def get(self, name: str) -> AppSetting | None:
        return next((s for s in self.settings if s.name == name), None)

    @property
    def required(self) -> tuple[AppSetting, ...]:
        return tuple(s for s in self.settings if s.required)

    @property
    def database_url(self) -> AppSetting | None:
        """The setting that holds the whole database URL: a required one first, else the first found."""
        found = [s for s in self.settings if URL_NAME.search(s.name.upper())]
        return next((s for s in found if s.required), found[0] if found else None)

    @property
    def database_parts(self) -> DatabaseParts | None:
        """The host/user/password/name settings the app builds its URL from (at least a host and a name or
        user), the group with the most required parts first."""
        groups: dict[str, dict[str, AppSetting]] = {}
        for setting in self.settings:
            prefix, _, last = setting.name.upper().rpartition("_")
            if last in PART_ROLES and PART_PREFIX.search(prefix + "_"):
                groups.setdefault(prefix + "_", {}).setdefault(PART_ROLES[last], setting)
        usable = [(p, g) for p, g in groups.items() if "host" in g and ("name" in g or "user" in g)]
        if not usable:
            return None
        prefix, parts = max(usable, key=lambda item: (sum(s.required for s in item[1].values()), len(item[1])))
        return DatabaseParts(prefix, parts)


def read_app_settings(root: Path, files: Iterable[Path]) -> AppSettings:
    """Every setting read in ``files`` (paths under ``root``); files that do not parse are skipped."""
    modules: list[tuple[str, ast.Module]] = []
    for file in files:
        if (tree := parsed(file)) is not None:
            modules.append((file.relative_to(root).as_posix(), tree))
    found: list[AppSetting] = []
    found += _pydantic(modules)
    for where, tree in modules:
        found += _starlette(where, tree)
        found += _environ(where, tree)
    merged: dict[str, AppSetting] = {}
    for setting in found:
        known = merged.get(setting.name)
        # Read in several places: required when any of them requires it; the first place is kept.
        if known is None:
            merged[setting.name] = setting
        elif setting.required and not known.required:
            merged[setting.name] = replace(known, required=True)
    return AppSettings(tuple(merged.values()))


# -- pydantic
@dataclass
class _Class:
    name: str
    where: str
    bases: list[str]
    node: ast.ClassDef
    fields: dict[str, tuple[AppSetting, str | None]] = field(default_factory=dict)  # name -> (setting, type)


def _base_names(node: ast.ClassDef) -> list[str]:
    return [b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases]


def _pydantic(modules: list[tuple[str, ast.Module]]) -> list[AppSetting]:
    classes: dict[str, _Class] = {}
    v1 = False
    for where, tree in modules:
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                classes.setdefault(node.name, _Class(node.name, f"{where}:{node.lineno}", _base_names(node), node))
            elif isinstance(node, ast.ImportFrom) and node.module == "pydantic":
                v1 |= any(alias.name == "BaseSettings" for alias in node.names)

    def is_a(name: str, roots: frozenset[str], seen: frozenset[str] = frozenset()) -> bool:
        cls = classes.get(name)
        if name in roots:
            return True
        return cls is not None and name not in seen and any(is_a(b, roots, seen | {name}) for b in cls.bases)

    settings = [c for c in classes.values() if is_a(c.name, BASE_SETTINGS)]
    models = {c.name for c in classes.values() if is_a(c.name, BASE_MODELS) or c in settings}
    subclassed = {b for c in settings for b in c.bases}
    found: list[AppSetting] = []
    for cls in settings:
        if cls.name in subclassed:
            continue  # its fields are read through the classes built on it
        config = _config_of(cls, classes)
        for name, (required, where, annotation, alias) in _fields_of(cls, classes, v1).items():
            env = alias or _cased(config.get("env_prefix", "") + name, config)
            delimiter = config.get("env_nested_delimiter")
            nested = classes.get(annotation or "")
            if nested and delimiter and annotation in models and not is_a(nested.name, BASE_SETTINGS):
                for sub, (sub_required, sub_where, _, _) in _fields_of(nested, classes, v1).items():
                    found.append(
                        AppSetting(
                            _cased(f"{env}{delimiter}{sub}", config), required and sub_required, sub_where, "pydantic"
                        )
                    )
                continue
            if nested and is_a(nested.name, BASE_SETTINGS):
                continue  # a settings class of its own, read under its own prefix
            found.append(AppSetting(env, required, where, "pydantic"))
    return found


def _cased(name: str, config: dict[str, str]) -> str:
    # pydantic matches names case-insensitively unless case_sensitive=True: the usual spelling is upper case.
    return name if config.get("case_sensitive") == "True" else name.upper()


def _config_of(cls: _Class, classes: dict[str, _Class]) -> dict[str, str]:
    """model_config = SettingsConfigDict(...) / {...} (v2) or class Config (v1), inherited, own values last."""
    config: dict[str, str | None] = {}
    for base in cls.bases:
        if base in classes and base != cls.name:
            config.update(_config_of(classes[base], classes))
    for node in cls.node.body:
        if isinstance(node, ast.Assign | ast.AnnAssign) and _target_name(node) == "model_config":
            value = node.value
            if isinstance(value, ast.Call):
                config.update({k.arg: _literal(k.value) for k in value.keywords if k.arg})
            elif isinstance(value, ast.Dict):
                keys = [(_literal(k) if k else None) or "" for k in value.keys]
                config.update(zip(keys, (_literal(v) for v in value.values), strict=True))
        elif isinstance(node, ast.ClassDef) and node.name == "Config":
            for item in node.body:
                if isinstance(item, ast.Assign | ast.AnnAssign) and (name := _target_name(item)) and item.value:
                    config[name] = _literal(item.value)
    return {k: v for k, v in config.items() if v is not None}


def _fields_of(
    cls: _Class, classes: dict[str, _Class], v1: bool
) -> dict[str, tuple[bool, str, str | None, str | None]]:
    """Field name -> (required, where, annotation's class name, alias), the bases' first."""
    fields: dict[str, tuple[bool, str, str | None, str | None]] = {}
    for base in cls.bases:
        if base in classes and base != cls.name:
            fields.update(_fields_of(classes[base], classes, v1))
    where = cls.where.rsplit(":", 1)[0]
    for node in cls.node.body:
        if not isinstance(node, ast.AnnAssign) or not isinstance(node.target, ast.Name):
            continue
        name = node.target.id
        if name.startswith("_") or name == "model_config" or _is_classvar(node.annotation):
            continue
        required, alias = node.value is None, None
        if isinstance(node.value, ast.Call) and _called(node.value) == "Field":
            required, alias = _field_call(node.value)
        # pydantic v1 gives an Optional field without a default the default None.
        if required and node.value is None and v1 and _optional(node.annotation):
            required = False
        fields[name] = (required, f"{where}:{node.lineno}", _class_name(node.annotation), alias)
    return fields


def _field_call(call: ast.Call) -> tuple[bool, str | None]:
    keywords = {k.arg: k.value for k in call.keywords if k.arg}
    alias = None
    for key in ("validation_alias", "alias", "env"):
        if key in keywords:
            value = keywords[key]
            if isinstance(value, ast.Call) and value.args:  # AliasChoices("A", "B"): the first
                value = value.args[0]
            if isinstance(value, ast.List | ast.Tuple) and value.elts:  # v1 env=["A", "B"]
                value = value.elts[0]
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                alias = value.value
                break
    first = call.args[0] if call.args else keywords.get("default")
    has_default = "default_factory" in keywords or (
        first is not None and not (isinstance(first, ast.Constant) and first.value is Ellipsis)
    )
    return not has_default, alias


def _is_classvar(annotation: ast.expr) -> bool:
    inner = annotation.value if isinstance(annotation, ast.Subscript) else annotation
    return (getattr(inner, "id", None) or getattr(inner, "attr", None)) == "ClassVar"


def _optional(annotation: ast.expr) -> bool:
    text = ast.unparse(annotation)
    return text.startswith(("Optional[", "typing.Optional[")) or "None" in re.split(r"\s*\|\s*", text)


def _class_name(annotation: ast.expr) -> str | None:
    return annotation.id if isinstance(annotation, ast.Name) else None


def _target_name(node: ast.Assign | ast.AnnAssign) -> str | None:
    target = node.targets[0] if isinstance(node, ast.Assign) else node.target
    return target.id if isinstance(target, ast.Name) else None


def _literal(node: ast.expr) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str | bool | int):
        return str(node.value)
    return None


def _called(call: ast.Call) -> str:
    return call.func.id if isinstance(call.func, ast.Name) else getattr(call.func, "attr", "")


# -- Starlette's Config
def _starlette(where: str, tree: ast.Module) -> Iterator[AppSetting]:
    """``config = Config(".env")`` then ``config("NAME", cast=..., default=...)``: required without a default."""
    readers = {
        _target_name(node)
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and _called(node.value) == "Config"
    } - {None}
    if not readers:
        return
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in readers):
            continue
        name = _string(node.args[0] if node.args else None)
        if name:
            keywords = {k.arg: k.value for k in node.keywords}
            default = keywords.get("default", node.args[2] if len(node.args) > 2 else None)
            yield AppSetting(name, default is None, f"{where}:{node.lineno}", "starlette", _literal_default(default))


# -- os.environ
def _environ(where: str, tree: ast.Module) -> Iterator[AppSetting]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and _is_environ(node.value) and isinstance(node.ctx, ast.Load):
            if name := _string(node.slice):
                yield AppSetting(name, True, f"{where}:{node.lineno}", "environ")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            getter = node.func.attr in ("get", "getenv") and (
                _is_environ(node.func.value) if node.func.attr == "get" else _is_os(node.func.value)
            )
            if getter and (name := _string(node.args[0] if node.args else None)):
                default = node.args[1] if len(node.args) > 1 else None
                yield AppSetting(name, False, f"{where}:{node.lineno}", "environ", _literal_default(default))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getenv":
            if name := _string(node.args[0] if node.args else None):
                yield AppSetting(name, False, f"{where}:{node.lineno}", "environ")


def _is_os(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and node.id == "os"


def _is_environ(node: ast.expr) -> bool:
    if isinstance(node, ast.Name):
        return node.id == "environ"
    return isinstance(node, ast.Attribute) and node.attr == "environ" and _is_os(node.value)


def _string(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value:
        return node.value
    return None


def _literal_default(node: ast.expr | None) -> str | None:
    return _literal(node) if node is not None else None
