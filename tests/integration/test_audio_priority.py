"""Audio thread priorities on the real kernel (sip/audio/priority.py).

Real threads of this process, found by their kernel names in /proc; what the kernel then
reports is asserted. Whether real-time scheduling is allowed depends on the machine
(root or RLIMIT_RTPRIO here; often refused on a desktop), so each test first asks the
kernel what this process may do and asserts the matching outcome — both paths are real.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest

from sip.audio import priority as priority_module
from sip.audio.priority import (
    NICE_FALLBACK,
    RT_PRIORITY,
    RTKIT_RTTIME_US,
    AudioThreadPriority,
    RtKit,
)

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


# -- rtkit (org.freedesktop.RealtimeKit1), as a desktop user gets real-time threads -------

BUS_CONF = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>session</type><listen>unix:tmpdir={tmp}</listen>
<policy context="default"><allow send_destination="*"/><allow receive_sender="*"/>
<allow own="*"/></policy></busconfig>
"""


@contextmanager
def private_bus(tmp_path: Path, with_rtkit: bool) -> Iterator[tuple[str, Path]]:
    """A dbus-daemon of our own (standing in for the system bus) and, if asked, a
    stand-in rtkit on it (this module run as `fake-rtkit`, which really changes the
    thread's scheduling, as rtkit does, and logs each request)."""
    conf = tmp_path / "bus.conf"
    conf.write_text(BUS_CONF.format(tmp=tmp_path))
    bus = subprocess.Popen(["dbus-daemon", f"--config-file={conf}", "--print-address=1",
                            "--nofork"], stdout=subprocess.PIPE, text=True)
    procs: list[subprocess.Popen[Any]] = [bus]
    log_file = tmp_path / "rtkit.log"
    try:
        assert bus.stdout is not None
        address = bus.stdout.readline().strip()
        assert address.startswith("unix:"), address
        if with_rtkit:
            fake = subprocess.Popen([sys.executable, "-m", "tests.integration.test_audio_priority",
                                     "fake-rtkit", address, str(log_file)],
                                    cwd=Path(__file__).resolve().parents[2])
            procs.append(fake)
            deadline = time.monotonic() + 20
            while "ready" not in (log_file.read_text() if log_file.exists() else ""):
                assert fake.poll() is None and time.monotonic() < deadline, "fake rtkit"
                time.sleep(0.05)
        yield address, log_file
    finally:
        for p in reversed(procs):
            p.terminate()
            p.wait(10)
        if bus.stdout is not None:
            bus.stdout.close()


@pytest.fixture
def direct_rt_refused(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This process may not set real-time scheduling itself (a desktop user); rtkit's
    precondition on RLIMIT_RTTIME is put back afterwards."""
    def refuse(*_args: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(priority_module.os, "sched_setscheduler", refuse)
    limit = resource.getrlimit(resource.RLIMIT_RTTIME)
    yield
    monkeypatch.undo()
    with suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_RTTIME, limit)


@pytest.mark.usefixtures("direct_rt_refused")
def test_rtkit_makes_the_audio_threads_real_time_when_the_process_may_not(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert shutil.which("dbus-daemon"), "dbus is missing: scripts/bootstrap.sh installs it"
    with private_bus(tmp_path, with_rtkit=True) as (address, log_file), \
            named_thread("clock") as clock, named_thread("media") as media:
        monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", address)
        result = AudioThreadPriority(("clock", "media")).apply()
        assert result == {"clock": "rtkit", "media": "rtkit"}
        for tid in (clock, media):
            assert os.sched_getscheduler(tid) == os.SCHED_RR  # the kernel agrees
            assert os.sched_getparam(tid).sched_priority == RT_PRIORITY
        assert sorted(log_file.read_text().split("\n")[1:3]) == sorted(
            [f"MakeThreadRealtime {clock} {RT_PRIORITY}",
             f"MakeThreadRealtime {media} {RT_PRIORITY}"])
        # rtkit's precondition: a bounded real-time budget for the process.
        assert resource.getrlimit(resource.RLIMIT_RTTIME)[1] <= RTKIT_RTTIME_US


@pytest.mark.usefixtures("direct_rt_refused")
def test_without_rtkit_it_asks_once_then_falls_back_to_nice(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with private_bus(tmp_path, with_rtkit=False) as (address, _log), \
            named_thread("clock") as clock, named_thread("media") as media:
        monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", address)
        rtkit = RtKit()
        calls: list[int] = []
        ask = rtkit.make_realtime

        def counted(tid: int, prio: int) -> bool:
            calls.append(tid)
            return ask(tid, prio)

        monkeypatch.setattr(rtkit, "make_realtime", counted)
        result = AudioThreadPriority(("clock", "media"), rtkit=rtkit).apply()
        assert not rtkit.enabled
        assert len(calls) == 2 and ask(media, RT_PRIORITY) is False  # asked the bus once
        expected = "nice" if may("nice") else ""
        assert result == {"clock": expected, "media": expected}
        for tid in (clock, media):
            assert os.sched_getscheduler(tid) == os.SCHED_OTHER


def fake_rtkit(address: str, log_path: str) -> int:
    """A stand-in for rtkit on `address`: MakeThreadRealtime(t thread, u priority)."""
    from PySide6.QtCore import ClassInfo, QCoreApplication, QObject, Slot
    from PySide6.QtDBus import QDBusConnection

    log = open(log_path, "a", buffering=1)  # noqa: SIM115 (lives as long as the process)

    # The stub takes **info only; a dict is how a key with spaces is passed at run time.
    @ClassInfo({"D-Bus Interface": "org.freedesktop.RealtimeKit1"})  # type: ignore[call-arg]
    class FakeRtKit(QObject):  # type: ignore[operator]
        @Slot("qulonglong", "uint")
        def MakeThreadRealtime(self, tid: int, prio: int) -> None:
            log.write(f"MakeThreadRealtime {tid} {prio}\n")
            os.sched_setscheduler(int(tid), os.SCHED_RR, os.sched_param(int(prio)))

    app = QCoreApplication([])
    bus = QDBusConnection.connectToBus(address, "rtkit")
    service = FakeRtKit()
    ok = (bus.isConnected()
          and bus.registerObject(RtKit.PATH, service,
                                 QDBusConnection.RegisterOption.ExportAllSlots)
          and bus.registerService(RtKit.SERVICE))
    if not ok:
        return 1
    log.write("ready\n")
    return app.exec()


if __name__ == "__main__":
    if sys.argv[1:2] == ["fake-rtkit"]:
        sys.exit(fake_rtkit(sys.argv[2], sys.argv[3]))
