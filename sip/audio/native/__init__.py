"""The native media path: the call's audio without the GIL (C, loaded with ctypes).

Why: every Python port callback and every Python audio read needs the GIL, and a GUI
thread preempted while holding it stalled all four sides of the call's audio at once
(100–200 ms, docs/decisions.md). `nm_*.c` in this folder holds the rings, the pjmedia
ports the conference bridge calls, the recorder taps and the PulseAudio threads.

Why built at first use into the user's cache folder rather than at `pip install`: the
C code needs no Python headers and no pjproject headers (it resolves pjsua's functions
in the already loaded `_pjsua2` module), so a plain `cc -shared` is all it takes (~0.3 s);
the file is named by a hash of the sources, so an edited checkout rebuilds on its own,
and a machine without a compiler simply keeps the Python ports. A `pip install -e .`
step would add a build backend dependency and leave stale builds in editable installs.

`load()` returns the library or None — with one log line saying why (no compiler, the
wheel's struct layout differs, PulseAudio's client library missing, or turned off with
AGENT_DESKTOP_NATIVE_AUDIO=0) — and never raises: the app must never abort.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import platformdirs

from sip.audio.native.binding import NativeLib, NativeMediaError

log = logging.getLogger(__name__)

__all__ = ["NativeLib", "NativeMediaError", "build", "load"]

SOURCES = ("nm_ring.c", "nm_media.c", "nm_pulse.c")
HEADERS = ("nm.h",)
ENV_SWITCH = "AGENT_DESKTOP_NATIVE_AUDIO"
_HERE = Path(__file__).resolve().parent
_CFLAGS = ["-O2", "-std=gnu11", "-fPIC", "-shared", "-pthread", "-Wall"]

_loaded: dict[str, NativeLib | None] = {}


def _source_hash(src_dir: Path) -> str:
    h = hashlib.sha256()
    for name in SOURCES + HEADERS:
        h.update(name.encode())
        h.update((src_dir / name).read_bytes())
    h.update(" ".join(_CFLAGS).encode())
    return h.hexdigest()[:16]


def build(src_dir: Path = _HERE, cache_dir: Path | None = None) -> Path:
    """Compile the library unless a build of these exact sources exists; returns its
    path. Raises NativeMediaError with a plain sentence when it cannot."""
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    try:
        digest = _source_hash(src_dir)
    except OSError as exc:
        raise NativeMediaError(f"native audio sources missing: {exc}") from None
    out_dir = cache_dir or Path(platformdirs.user_cache_dir("agent-desktop")) / "native"
    target = out_dir / f"libnm-{digest}.so"
    if target.exists():
        return target
    if not cc:
        raise NativeMediaError("no C compiler (cc/gcc) to build the native audio path; "
                               "install gcc and libc6-dev")
    out_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".libnm-", suffix=".so", dir=out_dir)
    os.close(fd)
    cmd = [cc, *_CFLAGS, *(str(src_dir / s) for s in SOURCES), "-ldl", "-o", tmp]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        if proc.returncode != 0:
            raise NativeMediaError(f"building the native audio path failed: "
                                   f"{proc.stderr.strip()[-800:]}")
        os.replace(tmp, target)  # atomic: a concurrent builder produced the same file
        for old in out_dir.glob("libnm-*.so"):  # builds of earlier sources
            if old != target:
                old.unlink(missing_ok=True)  # a process using one keeps its mapping
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NativeMediaError(f"building the native audio path failed: {exc}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    log.info("native audio path built: %s", target)
    return target


def load(src_dir: Path = _HERE, cache_dir: Path | None = None) -> NativeLib | None:
    """The native media library, ready to use, or None (logged once per reason)."""
    key = f"{src_dir}|{cache_dir}"
    if key in _loaded:
        return _loaded[key]
    lib: NativeLib | None = None
    if os.environ.get(ENV_SWITCH, "1") == "0":
        log.info("native audio path off (%s=0); using the Python audio ports", ENV_SWITCH)
    else:
        try:
            lib = NativeLib(build(src_dir, cache_dir))
            log.info("native audio path in use (%s)", lib.version)
        except NativeMediaError as exc:
            log.warning("native audio path unavailable, using the Python audio ports: %s",
                        exc)
    _loaded[key] = lib
    return lib
