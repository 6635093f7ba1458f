"""The ``fastlaunch run`` path in the Gunicorn master: settings -> app discovery -> worker plan -> prestart ->
Gunicorn. Imports core, prestart and worker; never the app, FastAPI, pydantic, Starlette, Typer or Rich.
"""
