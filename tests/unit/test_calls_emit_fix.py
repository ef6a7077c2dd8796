"""PySide6 6.12.0 on Python 3.11 drops a reference to None on every void C++ call and to
True on every Python-side emit(); the process then aborts after a few thousand calls.
`agent_desktop.phone.install_emit_refcount_fix` pins those counts (what 3.12 does)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from agent_desktop.phone import install_emit_refcount_fix


def test_counts_are_pinned_when_the_bug_is_present() -> None:
    install_emit_refcount_fix()
    if sys.version_info < (3, 12):
        assert sys.getrefcount(None) > 1 << 59 and sys.getrefcount(True) > 1 << 59


def test_a_busy_qt_process_exits_cleanly() -> None:
    code = textwrap.dedent("""
        import agent_desktop.phone
        from PySide6.QtCore import QCoreApplication, QObject, QTimer, Signal
        app = QCoreApplication([])
        class E(QObject):
            s = Signal(int)
        e = E()
        e.s.connect(lambda _x: None)
        t = QTimer()
        for i in range(20000):
            e.s.emit(i)
            t.setInterval(5)
            app.processEvents()
        print("done")
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120)
    assert (r.returncode, r.stdout.strip()) == (0, "done"), r.stderr[-500:]
