"""YAML read with the line of every mapping key, so a finding can name ``file:line`` (PyYAML's safe loader,
with compose's ``<<`` merge keys pointing at the lines where the merged values are written)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True)
class Loc:
    file: str  # relative to the project
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


class Map(dict[Any, Any]):
    """A YAML mapping that remembers where each key (and the mapping itself) is written; after ``merged`` the
    keys of one mapping may come from several files."""

    file: str = ""
    line: int = 0

    def __init__(self) -> None:
        super().__init__()
        self.locs: dict[Any, Loc] = {}

    def loc(self, key: object | None = None) -> Loc:
        return self.locs.get(key, Loc(self.file, self.line)) if key is not None else Loc(self.file, self.line)

    def map(self, key: str) -> Map:
        value = self.get(key)
        return value if isinstance(value, Map) else _empty(self)

    def list(self, key: str) -> list[Any]:
        value = self.get(key)
        return value if isinstance(value, list) else []


def _empty(parent: Map) -> Map:
    empty = Map()
    empty.file, empty.line = parent.file, parent.line
    return empty


class _Loader(yaml.SafeLoader):
    file = ""


def _mapping(loader: _Loader, node: yaml.MappingNode) -> Map:
    loader.flatten_mapping(node)  # resolves `<<: *anchor`, keeping the anchor's nodes (and their lines)
    result = Map()
    result.file, result.line = loader.file, node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if isinstance(key, list | dict):
            continue
        result[key] = loader.construct_object(value_node, deep=True)
        result.locs[key] = Loc(loader.file, key_node.start_mark.line + 1)
    return result


_Loader.add_constructor("tag:yaml.org,2002:map", _mapping)


def merged(base: Map, override: Map) -> Map:
    """``override`` laid over ``base`` as compose merges ``compose.override.yaml``: mappings key by key, any other
    value replaced."""
    result = Map()
    result.file, result.line = base.file, base.line
    for source in (base, override):
        for key, value in source.items():
            current = result.get(key)
            if isinstance(current, Map) and isinstance(value, Map):
                result[key] = merged(current, value)  # the key stays where it was first written
            else:
                result[key], result.locs[key] = value, source.loc(key)
    return result


def load_documents(path: Path, shown: str) -> list[Map]:
    """The file's mapping documents; raises yaml.YAMLError on a file that is not YAML (templated Helm charts)."""

    class Loader(_Loader):
        file = shown

    with path.open("rb") as stream:
        documents = list(yaml.load_all(stream, Loader=Loader))  # noqa: S506 - a SafeLoader subclass
    return [d for d in documents if isinstance(d, Map)]
