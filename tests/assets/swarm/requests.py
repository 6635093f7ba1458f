"""Sends GET requests, one after another, to the stack's proxy from inside the swarm's network namespace, until
a stop file appears or a bound (count or seconds) is reached; prints what it saw as one JSON object.

    python requests.py URL CAFILE MAX_REQUESTS MAX_SECONDS STOP_FILE
"""

import json
import os
import ssl
import sys
import time
import urllib.error
import urllib.request

url, cafile, limit, seconds, stop = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
context = ssl.create_default_context(cafile=cafile)
statuses: dict[str, int] = {}
failures: list[str] = []
deadline = time.monotonic() + seconds
sent = 0
while sent < limit and time.monotonic() < deadline and not os.path.exists(stop):
    sent += 1
    try:
        with urllib.request.urlopen(url, timeout=10, context=context) as response:
            response.read()
            status = str(response.status)
    except urllib.error.HTTPError as exc:
        status = str(exc.code)
    except OSError as exc:  # refused, reset, timed out: a failed request
        status = "error"
        failures.append(f"{type(exc).__name__}: {exc}")
    statuses[status] = statuses.get(status, 0) + 1
    if status != "200" and status != "error":
        failures.append(f"HTTP {status}")
print(json.dumps({"sent": sent, "statuses": statuses, "failures": failures[:20]}))
