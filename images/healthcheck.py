"""The image's HEALTHCHECK: healthy when the server answers HTTP (any status below 500) on the address it
listens on. Tried in order: BIND, else HOST:PORT, then every TCP port listening in the container (a
gunicorn_conf.py may bind elsewhere). Standard library only: it runs in the app's image."""

import http.client
import os
import sys

PATH = os.environ.get("HEALTHCHECK_PATH", "/")


def configured() -> list[tuple[str, int]]:
    bind = os.environ.get("BIND", "")
    host, _, port = bind.rpartition(":") if bind and not bind.startswith(("unix:", "fd://")) else ("", "", "")
    if not port:
        host, port = os.environ.get("HOST", ""), os.environ.get("PORT", "80")
    host = host.strip("[]")
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1" if host != "::" else "::1"
    return [(host, int(port))] if port.isdigit() else []


def listening() -> list[tuple[str, int]]:
    """TCP sockets in LISTEN state in this network namespace (/proc/net/tcp, tcp6)."""
    found = []
    for name, loopback in (("/proc/net/tcp", "127.0.0.1"), ("/proc/net/tcp6", "::1")):
        try:
            lines = open(name).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 3 and fields[3] == "0A":
                found.append((loopback, int(fields[1].rsplit(":", 1)[1], 16)))
    return found


def answers(host: str, port: int) -> bool:
    connection = http.client.HTTPConnection(host, port, timeout=4)
    try:
        connection.request("GET", PATH, headers={"User-Agent": "fastlaunch-healthcheck"})
        return connection.getresponse().status < 500
    except OSError:
        return False
    finally:
        connection.close()


def main() -> int:
    seen = set()
    for address in configured() + listening():
        if address not in seen:
            seen.add(address)
            if answers(*address):
                return 0
    print(f"no HTTP answer below 500 on {', '.join(f'{h}:{p}' for h, p in seen) or 'any port'}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
