"""pgpreflight: launch-day PostgreSQL monitor with a self-verifying launch checklist.

Import-free on purpose: widgets import tui.model without pulling in the app."""
__version__ = "0.1.0"
