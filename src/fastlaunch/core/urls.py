"""A database URL as it may be shown: every part as written except the password.

The shown text is rebuilt from the URL's parts, so only the password's place is masked (replacing the password's
text wherever it occurs turned ``postgres:postgres@`` into ``***:***@`` and a password ``1`` into ``***0.0.0.***``
inside an address). Passwords hide in the userinfo (``user:PASSWORD@host``) and in the query string
(``?password=...``, as libpq, SQLAlchemy and most drivers accept).
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote, urlsplit

MASK = "***"
# Query parameters that carry a password in the drivers SQLAlchemy supports (libpq, asyncpg, pymysql,
# aiomysql, pyodbc's odbc_connect, oracledb).
_SECRET_KEYS = {"password", "passwd", "pwd", "pass", "sslpassword", "odbc_connect"}
_USERINFO = re.compile(r"^(?P<scheme>[^:/?#]+://)(?P<user>[^@/?#]*?):(?P<password>[^@/?#]*)@")
_QUERY_SECRET = re.compile(rf"(?P<key>(?:^|[?&;])(?:{'|'.join(_SECRET_KEYS)})=)(?P<value>[^&;#]*)", re.IGNORECASE)


def backend(url: str) -> str:
    """The kind of database a URL names, without its driver: ``postgresql+asyncpg://...`` -> ``postgresql``."""
    try:
        return urlsplit(url).scheme.split("+")[0]
    except ValueError:
        return ""


def masked_url(url: str) -> str:
    """``url`` with its password (userinfo or query parameter) replaced by ``***``; nothing else changed."""
    shown = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", url, count=1)
    head, sep, rest = shown.partition("?")
    if sep:
        shown = head + sep + _QUERY_SECRET.sub(lambda m: f"{m['key']}{MASK}", rest)
    return shown


def passwords(url: str) -> set[str]:
    """Every password the URL carries, as written and percent-decoded (for scrubbing a driver's message)."""
    found: set[str] = set()
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return found
    if password:
        found |= {password, unquote(password)}
    for key, value in parse_qsl(parts.query, keep_blank_values=False):
        if key.lower() in _SECRET_KEYS and value:
            found |= {value}
    return found


def scrubbed(text: str, url: str) -> str:
    """A driver's message with the URL and its passwords masked. A password alone is masked only where it
    stands as a whole token, so a password ``1`` leaves the address ``10.0.0.1`` readable."""
    text = text.replace(url, masked_url(url))
    for secret in sorted(passwords(url), key=len, reverse=True):
        text = re.sub(rf"(?<![\w.\-]){re.escape(secret)}(?![\w.\-])", MASK, text)
    return text
