#!/bin/sh
echo "prestart.sh of the package app ran with sh as $(id -u)"
