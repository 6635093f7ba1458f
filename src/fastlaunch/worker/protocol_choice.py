"""Which HTTP protocol each worker serves with, and the limits it is given.

fastlaunch's httptools protocol (http_protocol.py); without httptools (no wheel for this platform), Uvicorn's h11
protocol with the same bounds (h11_protocol.py); with a Uvicorn whose protocol changed, Uvicorn's own choice
(internals.py has said what is off). Chosen on import, in the master before it forks.
"""

from __future__ import annotations

from typing import Any

from fastlaunch.worker.body_timeout import BodyLimits
from fastlaunch.worker.head_limits import HeadLimits
from fastlaunch.worker.internals import h11_protocol_usable, httptools_importable, httptools_protocol_usable
from fastlaunch.worker.options import WorkerOptions

HTTP: type[HttpToolsOneWriteProtocol] | type[H11LimitsProtocol] | str = "auto"
if httptools_protocol_usable():
    from fastlaunch.worker.http_protocol import HttpToolsOneWriteProtocol

    HTTP = HttpToolsOneWriteProtocol
elif not httptools_importable() and h11_protocol_usable():
    from fastlaunch.worker.h11_protocol import H11LimitsProtocol

    HTTP = H11LimitsProtocol


def limited_protocol(http: Any, cfg: Any, options: WorkerOptions) -> Any:
    """The protocol class Uvicorn's config will use, bounded by Gunicorn's limit_request_* settings (which
    Uvicorn's protocols ignore), HEADER_TIMEOUT and BODY_TIMEOUT; any other protocol as it is."""
    if isinstance(HTTP, str) or http is not HTTP:
        return http
    limits = HeadLimits(
        request_line=cfg.limit_request_line,
        fields=cfg.limit_request_fields,
        field_size=cfg.limit_request_field_size,
        header_timeout=options.header_timeout,
    )
    return HTTP.with_limits(limits, BodyLimits(options.body_timeout, options.body_min_rate))
