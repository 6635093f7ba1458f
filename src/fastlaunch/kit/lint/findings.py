"""A finding: a line, a code, what is wrong and the fix (with the exact line to use, where there is one)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Finding:
    line: int
    code: str
    message: str
    fix: str
    replacement: str | None = None  # the exact line to use instead, where there is one

    def render(self, path: str) -> str:
        return f"{path}:{self.line}: {self.code} {self.message}\n    fix: {self.fix}"

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}
