"""PySide6 6.12 drops a reference to `True` on every Python-side emit(); on Python 3.11
that aborts the process after a few hundred signals. agent_desktop.phone patches it."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from PySide6.QtCore import QObject, Signal

from agent_desktop.phone import install_emit_refcount_fix


class _Emitter(QObject):
    changed = Signal(int, str)


def test_emit_keeps_true_alive() -> None:
    install_emit_refcount_fix()
    e = _Emitter()
    got: list[int] = []
    e.changed.connect(lambda i, _s: got.append(i))
    before = sys.getrefcount(True)
    for i in range(3000):
        e.changed.emit(i, "x")
    assert abs(sys.getrefcount(True) - before) < 50  # unpatched: 3000 fewer
    assert len(got) == 3000


def test_a_process_emitting_many_signals_exits_cleanly() -> None:
    code = textwrap.dedent("""
        import agent_desktop.phone
        from PySide6.QtCore import QObject, Signal
        class E(QObject):
            s = Signal()
        e = E()
        for _ in range(5000):
            e.s.emit()
        print("done")
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=60)
    assert (r.returncode, r.stdout.strip()) == (0, "done"), r.stderr[-500:]
