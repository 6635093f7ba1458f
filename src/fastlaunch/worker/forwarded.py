"""The client a trusted proxy forwarded for (``X-Forwarded-For``) and the scheme it was reached by
(``X-Forwarded-Proto``), for ``FORWARDED_ALLOW_IPS``.

Each proxy appends the address it saw to ``X-Forwarded-For``; anything to the left of that may have been written by
the client. So the list is read from the right: trusted proxies are skipped and the first other hop is the client.
With ``*`` every peer is trusted but nothing it passed on is: the client is the rightmost hop, the one the peer
appended itself (Uvicorn and Gunicorn take the leftmost there, which the client writes). A hop that is not an IP
address ends the walk and the peer's own address stays, so header text never becomes the logged client.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
SCHEMES = {"http", "https", "ws", "wss"}


def hop_address(hop: str) -> str | None:
    """``hop`` as a canonical IP address (ports and IPv6 brackets dropped), or None if it is not one."""
    hop = hop.strip()
    if hop.startswith("["):  # [2001:db8::1]:443
        hop = hop[1 : hop.find("]")] if "]" in hop else ""
    elif hop.count(":") == 1:  # 203.0.113.9:443
        hop = hop.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(hop))
    except ValueError:
        return None


class TrustedProxies:
    def __init__(self, spec: str | list[str]) -> None:
        items = [item.strip() for item in (spec.split(",") if isinstance(spec, str) else spec)]
        self.any = "*" in items
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        self.names: set[str] = set()  # not an address: a unix socket's peer, as Uvicorn compares it
        for item in items:
            if not item or item == "*":
                continue
            try:
                self.networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                self.names.add(item)
        self.trusts = lru_cache(maxsize=1024)(self._trusts)

    def _trusts(self, host: str | None) -> bool:
        if self.any:
            return True
        if not host:
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return host in self.names
        return any(address in network for network in self.networks)

    def client(self, forwarded_for: list[bytes]) -> str | None:
        """The forwarded client's address, or None to keep the peer's."""
        hops = [hop for value in forwarded_for for hop in value.decode("latin-1").split(",")]
        for hop in reversed(hops):
            address = hop_address(hop)
            if address is None:
                return None
            if self.any or not self.trusts(address):
                return address
        # Every hop is a trusted proxy: the leftmost is as far back as anyone trusted saw.
        return hop_address(hops[0]) if hops else None
