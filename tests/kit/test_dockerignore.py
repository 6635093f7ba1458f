"""The .dockerignore matcher against Docker's documented rules (docs.docker.com, "Dockerignore files") and
moby's patternmatcher behaviour, including the cases fnmatch and .gitignore get wrong."""

from __future__ import annotations

import pytest

from fastlaunch.kit.dockerignore import Matcher, read_patterns


@pytest.mark.parametrize(
    ("patterns", "path", "ignored"),
    [
        (".env", ".env", True),
        (".env", "app/.env", False),  # anchored at the context's root, unlike .gitignore
        ("**/.env", ".env", True),
        ("**/.env", "app/settings/.env", True),
        ("*/.env", "app/.env", True),
        ("*/.env", ".env", False),  # fnmatch's "*" would also take the root's
        ("/secrets", "secrets/key", True),  # a leading slash is the root
        ("./app/.env", "app/.env", True),  # cleaned like a path
        ("a/../b", "b", True),
        ("node_modules", "node_modules/pkg/index.js", True),  # a parent directory's match leaves out its contents
        ("docs/**", "docs/a/b.md", True),
        ("docs/**", "docsx", False),
        ("**/*.pyc", "c.pyc", True),
        ("**/*.pyc", "a/b/c.pyc", True),
        ("temp?", "tempa", True),
        ("temp?", "temp/a", False),  # ? never crosses /
        ("*.md\n!README*.md\nREADME-secret.md", "README.md", False),
        ("*.md\n!README*.md\nREADME-secret.md", "README-secret.md", True),
        ("*.md\n!README*.md\nREADME-secret.md", "CHANGES.md", True),
        ("**\n!app", "app/main.py", False),
        ("**\n!app", "other.py", True),
        (".env*\n!.env", ".env", False),  # the last matching line wins
        ("# comment\n.git", "# comment", False),
        (" #x", "#x", True),  # a comment only when # starts the line
        ("  .venv  ", ".venv/bin/python", True),
        ("\ufeff.env", ".env", True),  # a byte-order mark on the first line
        ("[a-c].txt", "b.txt", True),
        ("[a-c].txt", "d.txt", False),
    ],
)
def test_docker_rules(patterns: str, path: str, ignored: bool) -> None:
    assert Matcher(read_patterns(patterns)).ignored(path) is ignored


def test_a_lone_exclamation_mark_is_an_error_as_in_docker() -> None:
    with pytest.raises(ValueError, match="illegal exclusion pattern"):
        Matcher(read_patterns("!\n"))
