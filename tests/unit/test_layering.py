"""The dependency rule of ARCHITECTURE.md §1, checked on the source: arrows point inward.

`agent_desktop` (except the composition root app*.py) imports neither Qt widgets, pjsua2,
requests, nor the outer packages; `ui` never imports pjsua2 or SQLAlchemy sessions.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


CORE_FORBIDDEN = ("ui", "sip", "sync", "pjsua2", "requests", "PySide6.QtWidgets",
                  "PySide6.QtGui", "PySide6.QtMultimedia")


@pytest.mark.parametrize("path", [p for p in _modules("agent_desktop")
                                  if not p.name.startswith("app")],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_core_imports_no_outer_layer(path: Path) -> None:
    bad = sorted(m for m in _imports(path)
                 if any(m == f or m.startswith(f + ".") for f in CORE_FORBIDDEN))
    assert bad == [], f"{path.name} imports {bad}"


@pytest.mark.parametrize("path", _modules("ui"), ids=lambda p: str(p.relative_to(ROOT)))
def test_ui_never_touches_pjsua2_or_sessions(path: Path) -> None:
    bad = sorted(m for m in _imports(path)
                 if m.startswith(("pjsua2", "sip", "sqlalchemy.orm", "agent_desktop.store.db")))
    assert bad == [], f"{path.name} imports {bad}"


def test_only_the_composition_root_knows_every_package() -> None:
    roots = [p for p in _modules("agent_desktop") if p.name.startswith("app")]
    assert {p.name for p in roots} == {"app.py", "app_phone.py", "app_sync.py"}
