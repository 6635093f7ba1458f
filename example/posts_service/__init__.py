"""The posts service: fastlaunch's reference application."""
