"""Server settings: one frozen dataclass passed to `create_app` (no globals, no env magic).

Defaults suit the embedded loopback server; a deployment sets the database URL and the
recordings folder on the command line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

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


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"
