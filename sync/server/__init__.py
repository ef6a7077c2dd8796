"""The central sync server (FastAPI): auth, push/pull of the change log, recording uploads.

`create_app(config)` builds the application; `python -m sync.server` / the
`agent-desktop-server` entry point runs it or administers it. The wire contract is
docs/sync-protocol.md.
"""
