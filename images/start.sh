#!/bin/sh
# The original image's entry point, kept for Dockerfiles and compose files that name it (CMD ["/start.sh"]).
# fastlaunch run does what it did: find the app, run /app/prestart.sh (PRE_START_PATH), serve with Gunicorn.
exec fastlaunch run "$@"
