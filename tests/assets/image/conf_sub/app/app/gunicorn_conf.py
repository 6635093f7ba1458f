# /app/app/gunicorn_conf.py
bind = "0.0.0.0:8002"
workers = 3
