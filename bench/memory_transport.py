"""An in-memory connection for the worker's HTTP protocols, without sockets: ``bench.inprocess`` measures a
request's cost over it, and the protocol's in-process tests (tests/worker/test_protocol_inprocess.py) read the
responses written to it."""

from __future__ import annotations

from typing import Any


class MemoryTransport:
    """Just enough of an asyncio transport for Uvicorn's HTTP protocols; counts the writes it is given."""

    def __init__(self) -> None:
        self.writes = 0
        self.closing = False
        self.read_paused = False

    def write(self, data: bytes) -> None:
        self.writes += 1

    def writelines(self, data: Any) -> None:
        self.writes += 1

    def close(self) -> None:
        self.closing = True

    def is_closing(self) -> bool:
        return self.closing

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}.get(name, default)

    def pause_reading(self) -> None:
        self.read_paused = True

    def resume_reading(self) -> None:
        self.read_paused = False


class RecordingTransport(MemoryTransport):
    """A MemoryTransport that also keeps what is written, in order (the bench's leaves that cost out)."""

    def __init__(self) -> None:
        super().__init__()
        self.buffer = bytearray()
        self.written_after_close = False  # a write the client would never see

    def write(self, data: bytes) -> None:
        self.writes += 1
        self.written_after_close |= self.closing
        self.buffer += data

    def writelines(self, data: Any) -> None:
        self.writes += 1
        self.written_after_close |= self.closing
        for chunk in data:
            self.buffer += chunk

    def take(self) -> bytes:
        """What was written since the last take."""
        data = bytes(self.buffer)
        self.buffer.clear()
        return data
