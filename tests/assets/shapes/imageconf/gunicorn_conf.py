# The shape of the official image's gunicorn_conf.py: workers from the host's CPU count (which ignores a
# container's CPU limit), WORKERS_PER_CORE and WEB_CONCURRENCY from the environment.
import multiprocessing
import os

per_core = float(os.getenv("WORKERS_PER_CORE", "1"))
concurrency = os.getenv("WEB_CONCURRENCY")
if concurrency:
    workers = int(concurrency)
else:
    workers = max(int(per_core * multiprocessing.cpu_count()), 2)

keepalive = 120
loglevel = os.getenv("LOG_LEVEL", "info")
