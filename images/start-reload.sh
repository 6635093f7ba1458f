#!/bin/sh
# The original image's development entry point: the prestart steps, then one Uvicorn process that reloads
# when /app changes, on HOST:PORT (0.0.0.0:80 unless set). Not for production.
set -e
fastlaunch prestart
exec fastlaunch dev --host "${HOST:-0.0.0.0}" --port "${PORT:-80}" "$@"
