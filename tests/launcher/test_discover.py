from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from fastlaunch.core.exceptions import AppDiscoveryError, AppLoadError
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


def test_syntax_error_is_reported_with_file_and_line(tmp_path: Path) -> None:
    write(tmp_path, {"main.py": "from fastapi import FastAPI\n\napp = FastAPI(\n"})
    with pytest.raises(AppLoadError) as info:
        found(tmp_path)
    assert "main.py:3: '(' was never closed" in str(info.value)
    assert "    app = FastAPI(" in str(info.value)
    assert info.value.exit_code == 3


def test_top_level_import_of_a_missing_module(tmp_path: Path) -> None:
    write(
        tmp_path,
        {"main.py": "import os\nimport nowhere_to_be_found.sub\nfrom . import rel\n" + FASTAPI_APP.format(name="app")},
    )
    with pytest.raises(AppLoadError, match=r"main.py:2: No module named 'nowhere_to_be_found'"):
        found(tmp_path)


def test_imports_of_sibling_modules_and_guarded_imports_pass(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "main.py": "import helpers\ntry:\n    import not_installed\nexcept ImportError:\n    pass\n"
            + FASTAPI_APP.format(name="app"),
            "helpers.py": "",
        },
    )
    assert found(tmp_path) == "main:app"


def test_a_module_that_extends_sys_path_is_left_to_its_import(tmp_path: Path) -> None:
    app = FASTAPI_APP.format(name="app")
    write(tmp_path, {"main.py": f"import sys\nsys.path.insert(0, '/opt/vendor')\nimport vendored_thing\n{app}"})
    assert found(tmp_path) == "main:app"


def test_factory_forms(tmp_path: Path) -> None:
    write(tmp_path, {"main.py": "from fastapi import FastAPI\n\ndef create_app():\n    return FastAPI()\n"})
    explicit = discover(load_settings(environ={"APP_MODULE": "main:create_app()"}, project_dir=tmp_path))
    bare = discover(load_settings(environ={"APP_MODULE": "main:create_app"}, project_dir=tmp_path))
    assert (explicit.attr, explicit.factory, explicit.import_string) == ("create_app", True, "main:create_app()")
    assert (bare.attr, bare.factory) == ("create_app", True)
    with pytest.raises(AppDiscoveryError, match=r"only the app factory create_app\(\)") as info:
        found(tmp_path)
    assert "APP_MODULE='main:create_app()'" in str(info.value)


def test_package_directory_and_src_layout(tmp_path: Path) -> None:
    write(tmp_path, {"src/shop/__init__.py": FASTAPI_APP.format(name="app"), "src/shop/models.py": ""})
    assert found(tmp_path) == "shop:app"
    target = discover(load_settings(environ={"APP_MODULE": "src/shop"}, project_dir=tmp_path))
    assert (target.import_string, target.path) == ("shop:app", (tmp_path / "src").resolve())
    write(tmp_path, {"src/shop/main.py": FASTAPI_APP.format(name="api")})
    assert found(tmp_path) == "shop.main:api"


def test_empty_package_init_is_not_taken_for_the_app(tmp_path: Path) -> None:
    write(tmp_path, {"app/__init__.py": "", "src/tools/__init__.py": "VERSION = 1\n"})
    with pytest.raises(AppDiscoveryError, match="No app found"):
        found(tmp_path)


def test_tool_fastapi_entrypoint_between_fastlaunch_app_and_automatic(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "main.py": FASTAPI_APP.format(name="app"),
            "service/__init__.py": "",
            "service/web.py": FASTAPI_APP.format(name="application") + "admin = FastAPI()\n",
            "pyproject.toml": '[tool.fastapi]\nentrypoint = "service.web:application"\n',
        },
    )
    assert found(tmp_path) == "service.web:application"
    assert found(tmp_path, pyproject={"app": "service.web:admin"}) == "service.web:admin"
    assert found(tmp_path, {"APP_MODULE": "main:app"}) == "main:app"
    assert "[tool.fastapi] entrypoint" in discover(load_settings(project_dir=tmp_path)).source


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        # Poetry's default layout: a package at the root; scripts/ and tests/ are never taken.
        (
            {"notesvc/__init__.py": "", "notesvc/main.py": FASTAPI_APP.format(name="app"), "tests/main.py": ""},
            "notesvc.main:app",
        ),
        ({"scripts/__init__.py": "", "scripts/main.py": FASTAPI_APP.format(name="app")}, None),
        # src is itself the package: src/main.py imports as src.main from the root.
        ({"src/__init__.py": "", "src/main.py": FASTAPI_APP.format(name="app")}, "src.main:app"),
        # A package with a main.py that builds no app (a CLI) is not taken.
        ({"tool/__init__.py": "", "tool/main.py": "def main():\n    pass\n"}, None),
    ],
)
def test_flat_packages_and_src_as_a_package(tmp_path: Path, files: dict[str, str], expected: str | None) -> None:
    write(tmp_path, files)
    if expected:
        assert found(tmp_path) == expected
        assert discover(load_settings(project_dir=tmp_path)).path == tmp_path.resolve()
    else:
        with pytest.raises(AppDiscoveryError):
            found(tmp_path)


def test_nothing_found_names_the_files_that_create_an_app(tmp_path: Path) -> None:
    write(tmp_path, {"service/web/server.py": FASTAPI_APP.format(name="application"), "tests/t.py": "x = FastAPI()"})
    with pytest.raises(AppDiscoveryError) as caught:
        found(tmp_path)
    assert "Files that create an app: service/web/server.py." in caught.value.message
    assert "APP_MODULE=service.web.server:app" in (caught.value.hint or "")


def test_project_rooted_at_a_package_directory(tmp_path: Path) -> None:
    backend = write(tmp_path / "backend", {"__init__.py": "", "main.py": FASTAPI_APP.format(name="app")})
    target = discover(load_settings(project_dir=backend))
    assert (target.import_string, target.path) == ("main:app", backend.resolve())
    # Its main.py imports the package by name: then it is backend.main, from the parent directory.
    (backend / "core.py").write_text("X = 1\n")
    (backend / "main.py").write_text("from backend.core import X\n" + FASTAPI_APP.format(name="app"))
    target = discover(load_settings(project_dir=backend), check_imports=False)
    assert (target.import_string, target.path) == ("backend.main:app", tmp_path.resolve())
