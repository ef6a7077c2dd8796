"""Agent Desktop core: domain, local store, workflows, settings and credentials.

This package imports neither Qt widgets, pjsua2 nor requests (ARCHITECTURE.md §1), so that
every front end and the sync worker share it and it stays testable without a display.
"""

__version__ = "0.1.0"
