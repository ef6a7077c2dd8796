"""The dependency rule of ARCHITECTURE.md §1, checked on the source: arrows point inward.

`agent_desktop` (except the modules of the composition root, named one by one below)
imports neither Qt widgets, pjsua2, requests, nor the outer packages; `ui` never imports
pjsua2 or SQLAlchemy sessions; and nothing but the entry point imports the root.
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


# The composition root: `app.py` reads top to bottom; the others are its parts, split for
# size and readability. Only these may know every package. A new one must be added here
# on purpose — a file name pattern would let any `app_*.py` or `startup*.py` slip through.
COMPOSITION_ROOT = ("app.py", "app_phone.py", "app_sync.py", "app_workspace.py",
                    "startup.py")
ROOT_MODULES = tuple(f"agent_desktop.{name[:-3]}" for name in COMPOSITION_ROOT)


def _is_root(path: Path) -> bool:
    return path.parent == ROOT / "agent_desktop" and path.name in COMPOSITION_ROOT


@pytest.mark.parametrize("path", [p for p in _modules("agent_desktop") if not _is_root(p)],
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


def test_the_composition_root_modules_exist_and_know_the_outer_packages() -> None:
    """The list above is not stale: each module exists, and together they import ui, sip
    and sync (the rule exempts them because they wire every package)."""
    paths = [ROOT / "agent_desktop" / name for name in COMPOSITION_ROOT]
    assert all(p.is_file() for p in paths), [p.name for p in paths if not p.is_file()]
    outer = {m.split(".")[0] for p in paths for m in _imports(p)}
    assert {"ui", "sip", "sync"} <= outer


@pytest.mark.parametrize("package", ["agent_desktop", "ui", "sip", "sync"])
def test_nothing_but_the_entry_point_imports_the_root(package: str) -> None:
    """Dependencies are passed in: no module reaches back into the root for a service."""
    offenders = {}
    for path in _modules(package):
        if _is_root(path) or path == ROOT / "agent_desktop" / "__main__.py":
            continue
        bad = sorted(m for m in _imports(path) if m in ROOT_MODULES)
        if bad:
            offenders[str(path.relative_to(ROOT))] = bad
    assert offenders == {}


def test_the_composition_root_stays_small() -> None:
    """A newcomer reads app.py top to bottom: it holds the order, the parts the detail."""
    sizes = {name: len((ROOT / "agent_desktop" / name).read_text(encoding="utf-8")
                       .splitlines()) for name in COMPOSITION_ROOT}
    assert sizes["app.py"] <= 350, sizes
    assert max(sizes.values()) <= 600, sizes
