"""fastlaunch: take a FastAPI (ASGI) application from a laptop to production."""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
