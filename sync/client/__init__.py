"""Desktop side of sync: push the outbox, pull server changes, upload recordings.

`SyncClient` (no Qt) does one round at a time; `SyncWorker` runs it on a worker thread and
reports by typed signals; `RecordingUploader` moves WAV files over the resumable upload
protocol. The wire contract is docs/sync-protocol.md.
"""

from sync.client.errors import (
    AuthError,
    PermanentError,
    ResetRequired,
    SyncError,
    TransientError,
)

__all__ = ["AuthError", "PermanentError", "ResetRequired", "SyncError", "TransientError"]
