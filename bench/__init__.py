"""fastlaunch's benchmark harness: the launcher side by side with the servers users would pick instead.

``python -m bench`` (``make bench``) runs the full comparison; ``--smoke`` (``make bench-smoke``) a few
seconds of it, so the harness cannot rot.
"""
