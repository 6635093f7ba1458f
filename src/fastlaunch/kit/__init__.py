"""The deploy kit: ``fastlaunch init`` (project detection, templates, safe writes), ``fastlaunch lint`` and
``fastlaunch check``. Imports core, launcher (discovery, the worker plan), worker and prestart (check asks the
database for max_connections through the prestart driver); never the CLI, never the app.
"""
