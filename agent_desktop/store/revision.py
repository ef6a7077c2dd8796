"""The newest migration id, read from the version files without SQLAlchemy or Alembic.

Start-up only needs "is the database at head?": both the first-frame reader (which must
not import SQLAlchemy) and `Database.open` (which must not import Alembic unless a
migration is due) ask here. A test checks the answer agrees with Alembic's own.
"""

from __future__ import annotations

import re
from pathlib import Path

VERSIONS_DIR = Path(__file__).with_name("migrations") / "versions"
_REV = re.compile(r"^(down_revision|revision)\s*=\s*['\"]?([\w-]+|None)['\"]?", re.M)


def read_head_revision(versions_dir: Path = VERSIONS_DIR) -> str | None:
    """The single head of the migration chain, or None when there is not exactly one."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for f in versions_dir.glob("*.py"):
        found = {m.group(1): m.group(2) for m in _REV.finditer(f.read_text(encoding="utf-8"))}
        if "revision" in found:
            revisions.add(found["revision"])
        if found.get("down_revision") not in (None, "None"):
            parents.add(found["down_revision"])
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None
