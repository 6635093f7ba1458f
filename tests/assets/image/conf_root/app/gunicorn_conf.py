# /app/gunicorn_conf.py
bind = "0.0.0.0:8001"
workers = 3
