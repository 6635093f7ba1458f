"""Loading the settings: every source merged over the defaults and validated, all problems reported at once.

The settings themselves are declared once, as the fields of ``Settings`` (``core/settings_workers.py`` and
``core/settings_serving.py``); this module is where the rest of fastlaunch imports them from.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fastlaunch.core.exceptions import ConfigError
from fastlaunch.core.secret_files import file_variable, read_secret_file
from fastlaunch.core.setting import Setting, Source
from fastlaunch.core.settings_serving import BY_NAME, SETTINGS, Settings

__all__ = ["BY_NAME", "SETTINGS", "Setting", "Settings", "Source", "load_here", "load_settings"]


def load_settings(
    *,
    cli: Mapping[str, object] | None = None,
    environ: Mapping[str, str] | None = None,
    pyproject: Mapping[str, object] | None = None,
    pyproject_path: Path | None = None,
    project_dir: Path | None = None,
    dotenv: Mapping[str, str] | None = None,
    dotenv_path: Path | None = None,
) -> Settings:
    """Merge the sources and validate every value, reporting all problems at once."""
    cli = cli or {}
    environ = environ or {}
    pyproject = pyproject or {}
    dotenv = dotenv or {}
    where_toml = f"{pyproject_path or 'pyproject.toml'} [tool.fastlaunch]"
    problems: list[str] = []

    unknown = sorted(set(pyproject) - set(BY_NAME))
    for key in unknown:
        problems.append(f"unknown key '{key}' in {where_toml}: valid keys are {', '.join(BY_NAME)}")

    values: dict[str, Any] = {s.name: s.default for s in SETTINGS}
    sources: dict[str, Source] = {}
    for setting in SETTINGS:
        # Precedence: command line > environment > [tool.fastlaunch] > default.
        candidates: list[tuple[object, Source]] = []
        if cli.get(setting.name) is not None:
            candidates.append((cli[setting.name], Source("cli", setting.cli or setting.name)))
        if setting.env and setting.env in environ:
            raw = environ[setting.env]
            if raw != "" or not setting.empty_is_unset:
                candidates.append((raw, Source("env", setting.env)))
        if setting.secret and setting.env and environ.get(file_variable(setting.env)):
            problem = _secret_from_file(setting.env, environ, candidates)
            if problem:
                problems.append(problem)
                continue
        if setting.dotenv and setting.env and dotenv.get(setting.env):
            candidates.append((dotenv[setting.env], Source("dotenv", f"{dotenv_path or '.env'} {setting.env}")))
        if setting.name in pyproject:
            candidates.append((pyproject[setting.name], Source("pyproject", f"{where_toml} {setting.name}")))
        if not candidates:
            continue
        raw_value, source = candidates[0]
        try:
            values[setting.name] = setting.parse(raw_value)
        except ValueError as exc:
            shown = "********" if setting.secret else repr(raw_value)
            label = {"cli": setting.cli, "env": setting.env, "dotenv": setting.env}.get(source.kind) or (
                f"{setting.name} in {where_toml}"
            )
            fix = f"; {setting.fix}" if setting.fix else ""
            problems.append(f"{label}={shown} ({source.describe().split(' (')[0]}): {exc}{fix}")
            continue
        sources[setting.name] = source

    if problems:
        noun = "problem" if len(problems) == 1 else "problems"
        raise ConfigError(f"Invalid configuration ({len(problems)} {noun}):", problems=problems)
    return Settings(**values, project_dir=project_dir or Path.cwd(), sources=sources)


def _secret_from_file(env: str, environ: Mapping[str, str], candidates: list[tuple[object, Source]]) -> str | None:
    """Adds the value of ``env`` read from the file ``env``_FILE names (core/secret_files.py); a problem when
    both are set (which one wins would be a guess) or the file cannot be read."""
    variable, path = file_variable(env), environ[file_variable(env)]
    if environ.get(env):
        return f"{env} and {variable} are both set: unset one of them ({variable} names a file holding the value)"
    try:
        # After the command line, in the environment's place: above .env and [tool.fastlaunch].
        candidates.append((read_secret_file(path), Source("env", f"{variable} {path}")))
    except ValueError as exc:
        return f"{variable}={path} (environment): {exc}; mount the secret at that path or fix {variable}"
    return None


def load_here(cli: Mapping[str, object] | None = None) -> Settings:
    """The settings for the project in the working directory: ``cli`` over the environment over its
    ``.env`` (only the settings the app shares) over its pyproject.toml's ``[tool.fastlaunch]`` over the
    defaults."""
    import os

    from fastlaunch.core.pyproject import read_tool_table

    project_dir = Path.cwd()
    table, path = read_tool_table(project_dir)
    dotenv_path = project_dir / ".env"
    dotenv: dict[str, str] = {}
    if dotenv_path.is_file():
        from dotenv import dotenv_values

        dotenv = {key: value for key, value in dotenv_values(dotenv_path).items() if value is not None}
    return load_settings(
        cli=cli,
        environ=os.environ,
        pyproject=table,
        pyproject_path=path,
        project_dir=project_dir,
        dotenv=dotenv,
        dotenv_path=dotenv_path,
    )
