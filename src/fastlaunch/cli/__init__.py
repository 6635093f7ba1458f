"""The ``fastlaunch`` command: the console script, the Typer CLI and the one place errors are rendered.

May import every part. Typer and Rich are loaded only here, and only when a command needs them.
"""
