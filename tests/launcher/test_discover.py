from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from fastlaunch.core.exceptions import AppDiscoveryError
from fastlaunch.core.settings import load_settings
from fastlaunch.launcher.discover import discover, module_for_file

FASTAPI_APP = "from fastapi import FastAPI\n\n{name} = FastAPI()\n"


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def found(root: Path, environ: dict[str, str] | None = None, pyproject: Mapping[str, object] | None = None) -> str:
    target = discover(load_settings(environ=environ, pyproject=pyproject, project_dir=root))
    return target.import_string


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"main.py": FASTAPI_APP.format(name="app"), "app/main.py": FASTAPI_APP.format(name="app")}, "main:app"),
        ({"app/__init__.py": "", "app/main.py": FASTAPI_APP.format(name="app")}, "app.main:app"),
        ({"app.py": FASTAPI_APP.format(name="app"), "api.py": FASTAPI_APP.format(name="app")}, "app:app"),
        ({"api.py": FASTAPI_APP.format(name="api")}, "api:api"),
        ({"app/__init__.py": "", "app/app.py": FASTAPI_APP.format(name="application")}, "app.app:application"),
        ({"app/__init__.py": "", "app/api.py": FASTAPI_APP.format(name="api")}, "app.api:api"),
    ],
)
def test_automatic_order_and_attribute(tmp_path: Path, files: dict[str, str], expected: str) -> None:
    assert found(write(tmp_path, files)) == expected


def test_app_preferred_over_api_and_first_asgi(tmp_path: Path) -> None:
    write(tmp_path, {"main.py": "from fastapi import FastAPI\nother = FastAPI()\napi = FastAPI()\napp = FastAPI()\n"})
    assert found(tmp_path) == "main:app"


def test_precedence_app_module_then_module_name_then_pyproject(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "main.py": FASTAPI_APP.format(name="app"),
            "svc.py": FASTAPI_APP.format(name="web") + "admin = FastAPI()\n",
        },
    )
    toml = {"app": "svc:admin"}
    assert found(tmp_path, {"APP_MODULE": "svc:web", "MODULE_NAME": "main"}, toml) == "svc:web"
    assert found(tmp_path, {"MODULE_NAME": "svc", "VARIABLE_NAME": "web"}, toml) == "svc:web"
    assert found(tmp_path, {"VARIABLE_NAME": "app"}, toml) == "main:app"  # module discovered, attr given
    assert found(tmp_path, {}, toml) == "svc:admin"
    target = discover(load_settings(environ={"APP_MODULE": "svc:web"}, project_dir=tmp_path))
    assert target.source == "environment (APP_MODULE)"


def test_package_root_goes_on_sys_path(tmp_path: Path) -> None:
    write(tmp_path, {"src/pkg/__init__.py": "", "src/pkg/sub/__init__.py": "", "src/pkg/sub/web.py": "x = 1\n"})
    assert module_for_file(tmp_path / "src/pkg/sub/web.py") == ("pkg.sub.web", (tmp_path / "src").resolve())


def test_file_path_form(tmp_path: Path) -> None:
    write(tmp_path, {"services/web.py": FASTAPI_APP.format(name="app")})
    target = discover(load_settings(environ={"APP_MODULE": "services/web.py"}, project_dir=tmp_path))
    assert (target.module, target.attr, target.path) == ("web", "app", (tmp_path / "services").resolve())


def test_unknown_module(tmp_path: Path) -> None:
    with pytest.raises(AppDiscoveryError, match=r"Could not find module 'nope' \(from environment \(APP_MODULE\)\)"):
        found(tmp_path, {"APP_MODULE": "nope:app"})


def test_unknown_attribute_suggests_the_real_one(tmp_path: Path) -> None:
    write(tmp_path, {"main.py": FASTAPI_APP.format(name="app")})
    with pytest.raises(AppDiscoveryError) as info:
        found(tmp_path, {"APP_MODULE": "main:application"})
    assert "has no attribute 'application'" in str(info.value)
    assert "APP_MODULE=main:app" in str(info.value)


def test_nothing_to_discover(tmp_path: Path) -> None:
    with pytest.raises(AppDiscoveryError, match="No app found"):
        found(tmp_path)


def test_syntax_error_is_left_to_the_worker(tmp_path: Path) -> None:
    # The user's own SyntaxError (with its traceback) is more useful than a guess from here.
    write(tmp_path, {"main.py": "app = (\n"})
    assert found(tmp_path) == "main"
