"""Builds the image family from this checkout (`make image`; `python images/imagebuild.py --help`).

Each tag is images/Dockerfile with its build arguments; fastlaunch comes from a wheel of this checkout.
The default engine, `harness`, is podman with the tests' private configuration and storage
(tests/podmanctl.py): it works offline, on stand-in bases built from Debian (only python:3.11-slim; see the
README). `--engine podman` or `--engine docker` use the machine's own engine and the real python:* bases.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CA = Path("/etc/ssl/certs/ca-certificates.crt")
PYTHONS = ("3.11", "3.12", "3.13", "3.14")
VARIANTS = ("slim", "full")
IMAGES = ("uvicorn-gunicorn-fastapi", "uvicorn-gunicorn")


def tag(image: str, python: str, variant: str) -> str:
    """fastlaunch/uvicorn-gunicorn-fastapi:python3.11-slim, as the original names its tags."""
    return f"fastlaunch/{image}:python{python}{'-slim' if variant == 'slim' else ''}"


def build_args(image: str, python: str, variant: str, wheel: str) -> list[str]:
    return [
        *("--build-arg", f"PYTHON_VERSION={python}"),
        *("--build-arg", f"VARIANT={'-slim' if variant == 'slim' else ''}"),
        *("--build-arg", f"IMAGE={image}"),
        *("--build-arg", f"FASTLAUNCH=/wheels/{wheel}"),
    ]


def build_context(into: Path) -> str:
    """images/ with a wheel of this checkout in wheels/ (where the Dockerfile's builder stage looks)."""
    shutil.copytree(HERE, into, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", "imagebuild.py"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(REPO), "-w", str(into / "wheels")],
        check=True,
        capture_output=True,
        # Fixed zip timestamps: the same checkout gives the same wheel, so the install layer stays cached.
        env={**os.environ, "SOURCE_DATE_EPOCH": "315532800"},
    )
    return next((into / "wheels").glob("fastlaunch-*.whl")).name


def engine_runner(engine: str) -> Callable[[Sequence[str]], str]:
    """A function running one `build` of the chosen engine, returning its output."""
    if engine == "harness":
        sys.path.insert(0, str(REPO / "tests"))
        from podmanctl import prepared

        podman = prepared()
        return lambda args: podman(*args).stdout

    def run(args: Sequence[str]) -> str:
        return subprocess.run([engine, *args], check=True, capture_output=True, text=True).stdout

    return run


def build_all(
    images: Sequence[str], pythons: Sequence[str], variants: Sequence[str], engine: str = "harness"
) -> list[str]:
    run = engine_runner(engine)
    built = []
    with tempfile.TemporaryDirectory(prefix="fastlaunch-image-") as tmp:
        context = Path(tmp)
        wheel = build_context(context)
        for python in pythons:
            for variant in variants:
                for image in images:
                    name = tag(image, python, variant)
                    args = ["build", "--format", "docker"] if engine != "docker" else ["build"]
                    if engine == "harness":
                        args += ["--pull=never", "--secret", f"id=ca,src={CA}"]
                    args += [*build_args(image, python, variant, wheel), "-t", name, str(context)]
                    print(f"building {name}", flush=True)
                    run(args)
                    built.append(name)
    return built


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image", choices=IMAGES, action="append", help="default: both")
    parser.add_argument("--python", choices=PYTHONS, action="append", help="default: 3.11")
    parser.add_argument("--variant", choices=VARIANTS, action="append", help="default: slim")
    parser.add_argument("--engine", choices=("harness", "podman", "docker"), default="harness")
    args = parser.parse_args(argv)
    built = build_all(args.image or IMAGES, args.python or ["3.11"], args.variant or ["slim"], args.engine)
    print("built: " + ", ".join(built))
    return 0


if __name__ == "__main__":
    sys.exit(main())
