"""The deploy kit: ``fastlaunch init`` (project detection, templates, safe writes) and ``fastlaunch lint``.
Imports core and launcher (discovery, the worker plan); never the CLI, never the app.
"""
