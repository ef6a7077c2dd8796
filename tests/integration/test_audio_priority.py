"""Audio thread priorities on the real kernel (sip/audio/priority.py).

Real threads of this process, found by their kernel names in /proc; what the kernel then
reports is asserted. Whether real-time scheduling is allowed depends on the machine
(root or RLIMIT_RTPRIO here; often refused on a desktop), so each test first asks the
kernel what this process may do and asserts the matching outcome — both paths are real.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from sip.audio.priority import NICE_FALLBACK, RT_PRIORITY, AudioThreadPriority

pytestmark = pytest.mark.integration


@contextmanager
def named_thread(name: str) -> Iterator[int]:
    """A sleeping thread whose kernel name is `name`; yields its native id."""
    ready = threading.Event()
    stop = threading.Event()
    tid: list[int] = []

    def run() -> None:
        tid.append(threading.get_native_id())
        Path(f"/proc/self/task/{tid[0]}/comm").write_text(name)
        ready.set()
        stop.wait(30)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    assert ready.wait(5)
    try:
        yield tid[0]
    finally:
        stop.set()
        t.join(5)


def may(what: str) -> bool:
    """Can this process raise a thread to real-time / lower its nice level? Probed on a
    throwaway thread, which is then left to end."""
    out: list[bool] = []

    def probe() -> None:
        try:
            if what == "rr":
                os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(RT_PRIORITY))
            else:
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICE_FALLBACK)
            out.append(True)
        except PermissionError:
            out.append(False)

    t = threading.Thread(target=probe)
    t.start()
    t.join()
    return out[0]


def test_named_audio_threads_are_raised_and_others_left_alone() -> None:
    with named_thread("clock") as clock, named_thread("unrelated") as other:
        prio = AudioThreadPriority(("clock", "audio-bridge"))
        result = prio.apply()
        if may("rr"):
            assert result == {"clock": "rr"}
            assert os.sched_getscheduler(clock) == os.SCHED_RR
            assert os.sched_getparam(clock).sched_priority == RT_PRIORITY
        elif may("nice"):
            assert result == {"clock": "nice"}
            assert os.getpriority(os.PRIO_PROCESS, clock) == NICE_FALLBACK
        else:
            assert result == {"clock": ""}
            assert os.sched_getscheduler(clock) == os.SCHED_OTHER
        assert os.sched_getscheduler(other) == os.SCHED_OTHER
        assert os.getpriority(os.PRIO_PROCESS, other) == 0
        # Applying again (every call) finds the same thread already done.
        assert prio.apply() == result


def test_no_proc_means_nothing_to_do(tmp_path: Path) -> None:
    assert AudioThreadPriority(("clock",), proc=tmp_path / "missing").apply() == {}
