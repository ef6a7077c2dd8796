"""PySide6 widgets, models and dialogs; talks to agent_desktop services only.

Importing any UI module first pins the reference counts that PySide6 6.12 on Python 3.11
leaks on every void C++ call and every emit (see `agent_desktop.phone.
install_emit_refcount_fix`): without it a UI session aborts the interpreter after a few
thousand `setText()` calls.
"""

from agent_desktop.phone import install_emit_refcount_fix

install_emit_refcount_fix()
