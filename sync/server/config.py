"""Server settings: one frozen dataclass passed to `create_app` (no globals, no env magic).

Defaults suit the embedded loopback server; a deployment sets the database URL and the
recordings folder on the command line.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SCHEMA_VERSIONS = (1, 1)  # (oldest, newest) client schema the server accepts

MiB = 1024 * 1024


@dataclass(frozen=True)
class ServerConfig:
    database_url: str
    recordings_dir: Path
    access_ttl_s: int = 15 * 60
    refresh_ttl_s: int = 30 * 24 * 3600
    max_json_bytes: int = 8 * MiB
    max_chunk_bytes: int = 64 * MiB
    max_recording_bytes: int = 2048 * MiB
    max_mutations: int = 1000
    default_page: int = 500
    max_page: int = 5000
    login_max_failures: int = 5
    login_window_s: float = 60.0
    schema_versions: tuple[int, int] = field(default=SCHEMA_VERSIONS)
    migrate_on_start: bool = True
    # Per worker process: request threads and database connections (pool + overflow).
    # workers × (db_pool + db_overflow) must stay under PostgreSQL's max_connections.
    # The pool covers every thread plus the event loop (SQLite answers there), so no
    # request waits for a connection and none is opened and closed per burst (an overflow
    # connection is dropped when checked in to a full pool: see `ServerDatabase`).
    threads: int = 20
    db_pool: int = 21
    db_overflow: int = 4

    def to_json(self) -> str:
        return json.dumps(asdict(self) | {"recordings_dir": str(self.recordings_dir)})

    @classmethod
    def from_json(cls, text: str) -> ServerConfig:
        raw: dict[str, Any] = json.loads(text)
        raw["recordings_dir"] = Path(raw["recordings_dir"])
        raw["schema_versions"] = tuple(raw["schema_versions"])
        return cls(**raw)


# How `serve --workers N` hands its configuration to the worker processes it spawns.
CONFIG_ENV = "AGENT_DESKTOP_SERVER_CONFIG"
# ... and its log level: a spawned worker starts with Python's default logging, which
# drops INFO lines (the server's own log records went nowhere in worker processes).
LOG_LEVEL_ENV = "AGENT_DESKTOP_SERVER_LOG_LEVEL"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def config_from_env() -> ServerConfig:
    text = os.environ.get(CONFIG_ENV)
    if not text:
        raise RuntimeError(f"{CONFIG_ENV} is not set: worker processes are started by "
                           "`agent-desktop-server serve --workers N`.")
    return ServerConfig.from_json(text)


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"
