"""``.dockerignore`` read and matched by Docker's own rules: a port of moby's ``patternmatcher`` (used by the
Docker CLI, BuildKit and buildah alike), so what lint and init say is left out is what a build leaves out.

Rules, unlike ``fnmatch`` and ``.gitignore``: a pattern is anchored at the context's root (``.env`` is the
root's only; ``**/.env`` is every directory's), ``*`` and ``?`` never cross ``/``, ``**`` spans directories,
a match on a parent directory leaves its contents out, and the last matching line wins (``!`` re-includes).
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

MatchType = Literal["exact", "prefix", "suffix", "regexp"]


def read_patterns(text: str) -> list[str]:
    """The patterns of a .dockerignore, normalised as the Docker CLI does (ignorefile.ReadAll)."""
    patterns: list[str] = []
    for number, raw in enumerate(text.splitlines()):
        line = raw.removeprefix("\ufeff") if number == 0 else raw
        if line.startswith("#"):  # a comment only at the very start of the line
            continue
        pattern = line.strip()
        if not pattern:
            continue
        invert = pattern.startswith("!")
        if invert:
            pattern = pattern[1:].strip()
        if pattern:
            pattern = _clean(pattern)
            if len(pattern) > 1 and pattern.startswith("/"):
                pattern = pattern[1:]
        patterns.append("!" + pattern if invert else pattern)
    return patterns


def _clean(path: str) -> str:
    """Go's filepath.Clean: posixpath.normpath, except that it keeps no leading double slash."""
    cleaned = posixpath.normpath(path)
    return "/" + cleaned.lstrip("/") if cleaned.startswith("//") else cleaned


@dataclass(frozen=True)
class Pattern:
    text: str  # cleaned, without the leading "!"
    exclusion: bool
    match_type: MatchType
    regex: re.Pattern[str] | None

    @classmethod
    def compile(cls, raw: str) -> Pattern:
        exclusion = raw.startswith("!")
        if exclusion and len(raw) == 1:
            raise ValueError('illegal exclusion pattern: "!"')
        text = _clean(raw[1:] if exclusion else raw)
        regex, i, in_class = "^", 0, False
        match_type: MatchType = "exact"
        while i < len(text):
            ch = text[i]
            if in_class and ch not in "]\\":  # a character class passes through: ranges, negation
                regex += ch
                i += 1
                continue
            if ch == "*" and text[i + 1 : i + 2] == "*":
                start = i == 0
                i += 2
                if text[i : i + 1] == "/":  # **/ is taken as **
                    i += 1
                if i >= len(text):  # ** at the end matches everything below, as in .gitignore
                    if match_type == "exact":
                        match_type = "prefix"
                    else:
                        regex, match_type = regex + ".*", "regexp"
                else:
                    regex, match_type = regex + "(.*/)?", "regexp"
                if start:
                    match_type = "suffix"
                continue
            if ch == "*":
                regex, match_type = regex + "[^/]*", "regexp"
            elif ch == "?":
                regex, match_type = regex + "[^/]", "regexp"
            elif ch == "\\":
                regex += re.escape(text[i + 1]) if i + 1 < len(text) else "\\\\"
                i += 1
            elif ch in "[]":
                regex, match_type, in_class = regex + ch, "regexp", ch == "["
            else:
                regex += re.escape(ch)
            i += 1
        compiled = re.compile(regex + "$", re.S) if match_type == "regexp" else None
        return cls(text, exclusion, match_type, compiled)

    def match(self, path: str) -> bool:
        if self.match_type == "exact":
            return path == self.text
        if self.match_type == "prefix":
            return path.startswith(self.text[:-2])
        if self.match_type == "suffix":
            suffix = self.text[2:]
            return path.endswith(suffix) or (suffix.startswith("/") and path == suffix[1:])
        assert self.regex is not None
        return self.regex.match(path) is not None


class Matcher:
    """Which context paths a build leaves out (moby's PatternMatcher.MatchesOrParentMatches)."""

    def __init__(self, patterns: list[str]) -> None:
        self.patterns = [Pattern.compile(p) for p in patterns if p.strip()]

    @classmethod
    def from_file(cls, path: Path) -> Matcher:
        return cls(read_patterns(path.read_text(encoding="utf-8", errors="replace")))

    def ignored(self, path: str) -> bool:
        path = _clean(path)
        parent = posixpath.dirname(path) or "."
        parents = parent.split("/")
        matched = False
        for pattern in self.patterns:
            # An exclusion can only undo a match, an inclusion only make one.
            if pattern.exclusion != matched:
                continue
            hit = pattern.match(path)
            if not hit and parent != ".":
                hit = any(pattern.match("/".join(parents[: n + 1])) for n in range(len(parents)))
            if hit:
                matched = not pattern.exclusion
        return matched
