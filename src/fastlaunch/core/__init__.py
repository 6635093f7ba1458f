"""The shared ground: the settings table and its validators, the error family, ``pyproject.toml`` reading,
logging and small OS readings. Imported by every part; imports no other part of fastlaunch, nor the app.
"""
