#!/bin/sh
set -e
exec python migrate.py
