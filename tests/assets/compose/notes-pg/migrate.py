import os

import psycopg

with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
    conn.execute("CREATE TABLE IF NOT EXISTS notes (id SERIAL PRIMARY KEY, text TEXT NOT NULL)")
    conn.execute("CREATE TABLE IF NOT EXISTS migrations (id SERIAL PRIMARY KEY, at TIMESTAMPTZ DEFAULT now())")
    conn.execute("INSERT INTO migrations DEFAULT VALUES")
print("migrated")
