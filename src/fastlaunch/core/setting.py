"""What one setting is, and how the settings table is read off the typed ``Settings`` class that declares it.

Each setting is a field of ``Settings`` (``core/settings_table.py``) whose default is ``setting(...)``: the name
and the type are the field's, so the class that code reads (``settings.workers: int | None``) and the table
that feeds the CLI options, the environment, ``[tool.fastlaunch]`` and the docs are one declaration.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, NamedTuple, TypeVar

from fastlaunch.core import validators as v
from fastlaunch.core.urls import masked_url

SourceKind = Literal["cli", "env", "dotenv", "pyproject", "default"]
T = TypeVar("T")
# The key of a settings field's metadata that holds its Setting.
_SETTING = "fastlaunch.setting"


class Source(NamedTuple):
    kind: SourceKind
    where: str  # "--workers", "WEB_CONCURRENCY", "/srv/app/pyproject.toml [tool.fastlaunch] workers", "default"

    def describe(self) -> str:
        kinds = {"cli": "command line", "env": "environment", "dotenv": ".env", "pyproject": "pyproject.toml"}
        return "default" if self.kind == "default" else f"{kinds[self.kind]} ({self.where})"


@dataclass(frozen=True, kw_only=True)
class Setting:
    name: str  # attribute on Settings and key in [tool.fastlaunch]: the field's name
    env: str | None
    parse: v.Parser
    default: object  # the field's default
    help: str
    section: str
    cli: str | None = None  # e.g. "--workers"; None: not a command-line option
    fix: str = ""  # how to correct a bad value, shown with the error
    secret: bool = False  # never printed or logged
    empty_is_unset: bool = True  # the image treated VAR="" as unset, except for the log destinations
    doc_default: str | None = None  # how the default reads in docs, where the value alone misleads
    image: str = "same"  # compatibility note against the official image
    # Also read from the project's .env, below the environment: for a value the app shares (DATABASE_URL),
    # which pydantic-settings reads from there too; prestart must wait for and lock the app's database.
    dotenv: bool = False


def setting(
    *,
    env: str | None,
    parse: v.Parser,
    default: T,
    help: str,
    section: str,
    cli: str | None = None,
    fix: str = "",
    secret: bool = False,
    empty_is_unset: bool = True,
    doc_default: str | None = None,
    image: str = "same",
    dotenv: bool = False,
) -> T:
    """A field of ``Settings`` that is a setting (the keywords are ``Setting``'s); typed as its default, so
    mypy checks the default against the field's annotation."""
    spec = Setting(
        name="",  # the field's, filled in by settings_of
        env=env,
        parse=parse,
        default=default,
        help=help,
        section=section,
        cli=cli,
        fix=fix,
        secret=secret,
        empty_is_unset=empty_is_unset,
        doc_default=doc_default,
        image=image,
        dotenv=dotenv,
    )
    return field(default=default, metadata={_SETTING: spec})


def settings_of(cls: type) -> tuple[Setting, ...]:
    """The settings a class declares with ``setting(...)``, in declaration order, each named for its field."""
    table = []
    for f in dataclasses.fields(cls):
        if _SETTING in f.metadata:
            spec: Setting = f.metadata[_SETTING]
            # Named once, here, before anything reads it (cheaper than a copy of every setting at each start).
            object.__setattr__(spec, "name", f.name)
            table.append(spec)
    return tuple(table)


# A base only: Settings, the class built, generates the methods (generating them here too costs every start).
@dataclass(frozen=True, kw_only=True, init=False, repr=False, eq=False)
class SettingsBase:
    """What every ``Settings`` carries beside its settings: the project and where each value came from."""

    project_dir: Path = field(default_factory=Path.cwd)
    sources: Mapping[str, Source] = field(default_factory=dict)

    def source(self, name: str) -> Source:
        return self.sources.get(name, Source("default", "default"))

    def is_set(self, name: str) -> bool:
        return self.source(name).kind != "default"

    def display(self, name: str) -> str:
        """A value as it may be shown to a person: secrets masked."""
        value = getattr(self, name)
        spec: Setting = next(f.metadata[_SETTING] for f in dataclasses.fields(self) if f.name == name)
        if spec.secret and value:
            # A URL (DATABASE_URL) shows all but its password, so a person can check host and database.
            return masked_url(str(value)) if "://" in str(value) else "********"
        return "" if value is None else str(value)
