echo "prestart.sh of the simple app: preparing"
GREETING="exported by prestart.sh"
export GREETING
