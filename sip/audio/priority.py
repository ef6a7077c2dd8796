"""Real-time scheduling for the threads that carry call audio, where the OS allows it.

Why (measured with /proc/<pid>/task/*/schedstat during the call benchmark, 2 cores at
load average ~15): the headset gaps were not slow code but threads left *waiting for a
CPU* — per 30 s call the Qt audio thread ran 1.0 s and waited 3.4 s in the run queue,
pjmedia's clock thread ran 0.8 s and waited 3.1 s, the RTP thread ran 0.1 s and waited
4.3 s, in windows of 50–100 ms: longer than any prebuffer a conversation tolerates. Sound
servers (PulseAudio, PipeWire, JACK) solve this the same way: their audio threads run
SCHED_RR/SCHED_FIFO at a low real-time priority, which preempts ordinary threads at once
and costs nothing while they sleep (each of ours needs ~1–4 % of a core).

What it does not fix: every port callback and every Qt audio read still needs the GIL,
and a busy GUI thread preempted while holding it stalls them all (priority inversion; a
GIL handoff took up to 60 ms while the real list scrolled). See docs/decisions.md.

A desktop user may not be allowed real-time scheduling (RLIMIT_RTPRIO 0, no
CAP_SYS_NICE). Then rtkit is asked (org.freedesktop.RealtimeKit1 on the system bus, the
way PulseAudio and PipeWire get real-time threads as a normal user), then a higher nice
level is tried, and failing that the threads stay as they are, said once in the log at
INFO. Only threads of this process are touched.
"""

from __future__ import annotations

import logging
import os
import resource
import shutil
import subprocess
from pathlib import Path

log = logging.getLogger(__name__)

#: Low in the real-time range (1–99): above every ordinary thread, below the kernel's
#: own real-time threads and a sound server's (PulseAudio uses 5–9, JACK 10–70).
RT_PRIORITY = 4
NICE_FALLBACK = -10


#: rtkit's default RTTimeUSecMax: it refuses a process whose RLIMIT_RTTIME is unset or
#: higher (a runaway real-time thread must get SIGXCPU instead of freezing the desktop).
#: Our audio threads run ~1 ms per 20 ms.
RTKIT_RTTIME_US = 200_000


class RtKit:
    """Asks rtkit to make one of our threads real-time, through `dbus-send` (part of
    dbus, present wherever rtkit is; a blocking call of a few ms, made once per thread).

    The first failure (no rtkit on the bus, refused by policy, no `dbus-send`) turns it
    off for the rest of the process, so a machine without rtkit pays for one try only.
    `DBUS_SYSTEM_BUS_ADDRESS` chooses the bus, as for any D-Bus client."""

    SERVICE = "org.freedesktop.RealtimeKit1"
    PATH = "/org/freedesktop/RealtimeKit1"
    TIMEOUT_MS = 500

    def __init__(self) -> None:
        self._exe = shutil.which("dbus-send")
        self.enabled = self._exe is not None

    def make_realtime(self, tid: int, priority: int) -> bool:
        if not self.enabled or self._exe is None:
            return False
        try:
            _limit_rttime()
            r = subprocess.run(
                [self._exe, "--system", "--print-reply",
                 f"--reply-timeout={self.TIMEOUT_MS}", f"--dest={self.SERVICE}", self.PATH,
                 f"{self.SERVICE}.MakeThreadRealtime", f"uint64:{tid}", f"uint32:{priority}"],
                capture_output=True, text=True, timeout=2 * self.TIMEOUT_MS / 1000,
                check=False)
            if r.returncode == 0:
                return True
            reason = r.stderr.strip() or f"dbus-send exit status {r.returncode}"
        except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
            reason = repr(exc)
        self.enabled = False
        log.info("rtkit did not make audio thread %d real-time (%s); not asking again",
                 tid, reason)
        return False


def _limit_rttime() -> None:
    """RLIMIT_RTTIME at most RTKIT_RTTIME_US (soft and hard): rtkit's precondition."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_RTTIME)
    cap = RTKIT_RTTIME_US if hard == resource.RLIM_INFINITY else min(hard, RTKIT_RTTIME_US)
    resource.setrlimit(resource.RLIMIT_RTTIME, (cap, cap))


def _is_realtime(tid: int) -> bool:
    return os.sched_getscheduler(tid) in (os.SCHED_RR, os.SCHED_FIFO)


def _set_one(tid: int, rtkit: RtKit | None = None) -> str:
    """Raise one thread of this process; returns "rr", "rtkit", "nice" or ""."""
    try:
        if _is_realtime(tid):
            return "rr"
        os.sched_setscheduler(tid, os.SCHED_RR, os.sched_param(RT_PRIORITY))
        return "rr"
    except (PermissionError, OSError):
        pass
    try:
        if rtkit is not None and rtkit.make_realtime(tid, RT_PRIORITY) and _is_realtime(tid):
            return "rtkit"
    except OSError:  # the thread ended meanwhile
        return ""
    try:
        if os.getpriority(os.PRIO_PROCESS, tid) > NICE_FALLBACK:
            os.setpriority(os.PRIO_PROCESS, tid, NICE_FALLBACK)
        return "nice"
    except (PermissionError, OSError):
        return ""


class AudioThreadPriority:
    """Raises the audio threads of this process, by their kernel names.

    Named threads are found in /proc/self/task/*/comm: pjmedia's `clock` (the conference
    bridge tick that calls our ports) and `media` (RTP), Qt's `QPulseAudioEngi`(ne), and
    the bridge's own QThread. Called again at every call: pjsua recreates its clock thread
    after the null sound device was idle, and Qt's engine thread starts with the first
    stream. Threads already raised are skipped (one stat per thread).
    """

    def __init__(self, names: tuple[str, ...], proc: Path = Path("/proc/self/task"),
                 rtkit: RtKit | None = None) -> None:
        self._names = names
        self._proc = proc
        self._rtkit = rtkit if rtkit is not None else RtKit()
        self._done: dict[int, str] = {}
        self._refused_logged = False

    def apply(self) -> dict[str, str]:
        """Raise every matching thread not raised yet; returns {name: "rr"/"rtkit"/
        "nice"/""}."""
        result: dict[str, str] = {}
        try:
            tasks = list(self._proc.iterdir())
        except OSError as exc:  # not Linux: nothing to do
            log.debug("no %s: %s", self._proc, exc)
            return result
        for task in tasks:
            try:
                tid = int(task.name)
                name = (task / "comm").read_text().strip()
            except (OSError, ValueError):
                continue
            if name not in self._names:
                continue
            if tid not in self._done:
                self._done[tid] = _set_one(tid, self._rtkit)
                log.info("audio thread %s (%d): %s", name, tid,
                         {"rr": f"real-time (SCHED_RR {RT_PRIORITY})",
                          "rtkit": f"real-time via rtkit (SCHED_RR {RT_PRIORITY})",
                          "nice": f"nice {NICE_FALLBACK}", "": "normal priority"}
                         [self._done[tid]])
            result[name] = self._done[tid]
        self._log_refusal(result)
        return result

    def _log_refusal(self, result: dict[str, str]) -> None:
        if result and not all(result.values()) and not self._refused_logged:
            self._refused_logged = True
            log.info("the OS refused higher priority for audio threads (RLIMIT_RTPRIO / "
                     "CAP_SYS_NICE); on a loaded machine the headset may glitch")
