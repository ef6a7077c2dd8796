"""One call for the composition root: the sync service for a local profile.

Kept here (not in app.py) so the wiring of transport, tokens, workers and uploader lives
next to the code it wires; app.py only decides the server URL (settings `server.url`, or
the embedded server's loopback URL) and connects signals to widgets.
"""

from __future__ import annotations

from pathlib import Path

from agent_desktop.credentials import CredentialStore
from agent_desktop.settings import Settings
from agent_desktop.store.db import Database
from sync.client.conflicts import ConflictStore
from sync.client.tokens import TokenStore
from sync.client.transport import HttpTransport, ServerConfig
from sync.client.uploads import RecordingUploader
from sync.client.worker import SyncService, SyncWorker, UploadWorker


def build_sync_service(db: Database, settings: Settings, credentials: CredentialStore,
                       recordings_dir: Path, server_url: str) -> SyncService:
    """Not started: call `.start()` after the window is shown and `.stop()` at exit."""
    config = ServerConfig(url=server_url, verify_tls=bool(settings.get("server.verify_tls")),
                          ca_file=str(settings.get("server.ca_file")))
    tokens = TokenStore(credentials, scope=server_url)
    transport = HttpTransport(config, tokens)
    worker = SyncWorker(db, transport, tokens,
                        interval_s=int(settings.get("server.sync_interval_s")),
                        username=str(settings.get("server.username")))
    uploads = UploadWorker(RecordingUploader(db, transport, recordings_dir))
    service = SyncService(worker, uploads)
    service.conflicts = ConflictStore(db)
    service.transport = transport
    return service
