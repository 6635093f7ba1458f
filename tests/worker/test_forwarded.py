"""Which X-Forwarded-For hop is the client, for each FORWARDED_ALLOW_IPS shape."""

from __future__ import annotations

import pytest

from fastlaunch.worker.forwarded import TrustedProxies, hop_address


@pytest.mark.parametrize(
    ("trusted", "header", "client"),
    [
        # Read from the right: trusted proxies are skipped, the first other hop is the client.
        ("127.0.0.1,10.0.0.0/8", [b"6.6.6.6, 203.0.113.9, 10.1.2.3"], "203.0.113.9"),
        ("127.0.0.1", [b"6.6.6.6", b"203.0.113.9"], "203.0.113.9"),  # two headers are one list
        ("127.0.0.1,10.0.0.0/8", [b"10.0.0.1, 10.0.0.2"], "10.0.0.1"),  # all trusted: the leftmost
        # '*': only the hop the peer appended counts, not what the client wrote before it.
        ("*", [b'6.6.6.6" 200 "x" request_id=forged, 203.0.113.9'], "203.0.113.9"),
        ("*", [b"[2001:db8::1]:443"], "2001:db8::1"),
        # Not an address: the peer's own address stays.
        ("*", [b'1.2.3.4" x=y'], None),
        ("127.0.0.1", [b"unknown"], None),
    ],
)
def test_forwarded_client(trusted: str, header: list[bytes], client: str | None) -> None:
    assert TrustedProxies(trusted).client(header) == client


def test_hop_address_forms() -> None:
    assert hop_address(" 203.0.113.9:8080 ") == "203.0.113.9"
    assert hop_address("2001:DB8::1") == "2001:db8::1"
    assert hop_address("[::1") is None and hop_address("x") is None


def test_trust() -> None:
    proxies = TrustedProxies("127.0.0.1, 10.0.0.0/8, unix-peer")
    assert proxies.trusts("10.9.9.9") and proxies.trusts("unix-peer")
    assert not proxies.trusts("11.0.0.1") and not proxies.trusts(None)
