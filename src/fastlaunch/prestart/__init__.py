"""The prestart steps, run once before serving: wait for the database, migrate (once across replicas), the
project's script. Imports only core; never the app, Typer or Rich.
"""
