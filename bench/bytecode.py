"""Byte-compile the code the benchmark starts, as ``pip install`` does for a regular install.

fastlaunch and the example are installed editable here, and these machines set PYTHONDONTWRITEBYTECODE, so
without this every start compiled fastlaunch's modules from source (~50 ms), a cost no deployed install
pays and one that the peers, installed from wheels, never paid either.
"""

from __future__ import annotations

import compileall

from bench.example import ROOT
from bench.plan import APPS_DIR

TREES = (ROOT / "src", ROOT / "example", APPS_DIR)


def compile_checkout() -> None:
    for tree in TREES:
        compileall.compile_dir(tree, quiet=1)
