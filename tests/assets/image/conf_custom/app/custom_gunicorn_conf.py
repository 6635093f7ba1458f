# named by GUNICORN_CONF=/app/custom_gunicorn_conf.py
bind = "0.0.0.0:8003"
workers = 3
loglevel = "warning"
