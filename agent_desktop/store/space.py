"""Free disk space for the copy kept before a schema migration, and sizes in words.

Why a module of its own: the store (`Database.backup_space`, `Database.migrate`), the
upgrade worker and the progress window (which runs before SQLAlchemy is needed) all talk
about the same figures; this module imports nothing heavy.

The copy is as large as the database's pages; it doubles the disk the data uses, and the
migration that follows writes too (its WAL and new indexes: 0003's three covering indexes
add roughly a tenth of the file). So the check asks for the copy's size plus a margin of
a tenth of it, at least 16 MB.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

MARGIN_FRACTION = 0.10
MARGIN_MIN = 16 * 1024 * 1024


@dataclass(frozen=True)
class SpaceCheck:
    """Room for a copy of the database in `folder`, in bytes."""

    folder: Path
    needed: int  # the copy plus the margin
    free: int  # available to this user (statvfs f_bavail: root's reserve excluded)

    @property
    def short(self) -> bool:
        return self.free < self.needed

    def __str__(self) -> str:
        return (f"{format_size(self.needed)} needed in {self.folder}, "
                f"{format_size(self.free)} free")


def check_room(folder: Path, copy_size: int) -> SpaceCheck:
    needed = copy_size + max(MARGIN_MIN, int(copy_size * MARGIN_FRACTION))
    st = os.statvfs(folder)
    return SpaceCheck(folder, needed, st.f_bavail * st.f_frsize)


def format_size(size: int) -> str:
    """Bytes in words an agent reads (decimal units, as file managers show them)."""
    if size < 1000:
        return f"{size} bytes"
    if size < 1000**2:
        return f"{size / 1000:.0f} kB"
    if size < 1000**3:
        return f"{size / 1000**2:.1f} MB"
    return f"{size / 1000**3:.1f} GB"
