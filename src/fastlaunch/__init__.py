"""fastlaunch: take a FastAPI (ASGI) application from a laptop to production.

The parts: ``cli`` (the command), ``launcher`` (``fastlaunch run`` in the Gunicorn master), ``worker`` (what runs
inside each worker), ``prestart`` (steps before serving), ``kit`` (``init`` and ``lint``), ``core`` (settings,
errors, logging: shared by all). The modules at this level, ``probes``, ``offline_docs`` and ``request_id``, are
the helpers apps import.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
