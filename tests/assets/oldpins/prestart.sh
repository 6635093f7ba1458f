#! /usr/bin/env bash
# The image's classic prestart: migrate, then let the server start.
set -e
alembic upgrade head
