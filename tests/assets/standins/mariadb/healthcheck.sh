#!/bin/sh
# The official image's health check, for the options compose.yaml uses: the server answers over its socket and
# InnoDB has started (--connect --innodb_initialized).
exec mariadb --protocol=socket -uroot -e "SELECT 1 FROM information_schema.ENGINES WHERE ENGINE='InnoDB' AND SUPPORT IN ('YES','DEFAULT')" >/dev/null
