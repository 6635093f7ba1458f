echo "custom-prestart.sh under /app/custom_app ran"
