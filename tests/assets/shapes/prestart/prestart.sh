#! /usr/bin/env bash
# The classic prestart script: let the database start, then migrate.
set -e
sleep 0
alembic upgrade head
