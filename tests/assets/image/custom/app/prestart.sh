echo "the default /app/prestart.sh ran"
