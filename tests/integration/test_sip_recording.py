"""Automatic recording through the engine: a Recording row linked to the CallLog, with a
sha256 that matches the file, and the customer's audio (the simulated line's greeting)
in the right channel."""

from __future__ import annotations

import hashlib
import json
import wave
from pathlib import Path

import numpy as np
import pytest
from pytestqt.qtbot import QtBot

from agent_desktop.calls import CallService
from agent_desktop.dialplan import DialPlan
from agent_desktop.phone import CallState
from agent_desktop.phones import PhoneNormalizer
from agent_desktop.store.db import Database
from agent_desktop.store.models import Recording
from sip.recorder import StereoRecorder
from tests.integration.conftest import EngineFactory, NoCallers
from tests.integration.rig.simline import SimLine

pytestmark = pytest.mark.integration
GREETING_HZ = (440.0, 523.25, 659.25, 783.99)


def test_call_is_recorded_and_linked(simline: SimLine, engine_factory: EngineFactory,
                                     db: Database, tmp_path: Path, qtbot: QtBot) -> None:
    rec_dir = tmp_path / "recordings"
    engine = engine_factory(recordings_dir=rec_dir, recorder_factory=StereoRecorder)
    svc = CallService(db, engine, DialPlan(PhoneNormalizer("CN"), simline.domain), NoCallers(),
                      recordings_dir=rec_dir)
    with qtbot.waitSignal(engine.recording_started, timeout=5000) as started:
        log_id = svc.dial(None, "sip:answer@" + simline.domain)
    qtbot.waitUntil(lambda: svc.state_of(log_id) == CallState.CONNECTED, timeout=5000)
    qtbot.wait(1000)
    with qtbot.waitSignal(svc.recording_paused, timeout=2000) as paused:
        svc.pause_recording(log_id, True)  # the customer reads out a card number
    assert paused.args == [log_id, True]
    qtbot.wait(1000)
    svc.pause_recording(log_id, False)
    qtbot.wait(1000)
    with qtbot.waitSignal(engine.recording_finished, timeout=5000) as finished:
        svc.hangup(log_id)
    info = finished.args[1]
    path = Path(started.args[1])
    assert path.is_file() and path.parent == rec_dir  # where start-up repair looks
    assert info.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert 2.0 <= info.duration_s <= 12.0
    with db.session() as s:
        rows = s.query(Recording).filter(Recording.call_log_id == log_id).all()
    assert len(rows) == 1
    row = rows[0]
    spans = json.loads(row.paused_spans)
    assert len(spans) == 1 and 0.7 <= spans[0][1] - spans[0][0] <= 3.0, spans
    assert (row.state, row.sha256, row.size_bytes) == ("complete", info.sha256,
                                                       path.stat().st_size)
    assert row.path == str(path.relative_to(rec_dir))

    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getframerate()) == (2, 16000)
        frames = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, 2)
    a, b = (int(x * 16000) for x in spans[0])
    assert not frames[a + 800:b - 800].any()  # the paused span is silence in both channels
    right = frames[:, 1].astype(np.float64)
    left = frames[:, 0].astype(np.float64)
    assert np.sqrt(np.mean(right**2)) > 300  # the customer's greeting
    assert np.sqrt(np.mean(left**2)) < 50  # no microphone (null device): silence
    spectrum = np.abs(np.fft.rfft(right * np.hanning(len(right))))
    peak = np.fft.rfftfreq(len(right), 1 / 16000)[int(np.argmax(spectrum))]
    assert min(abs(peak - f) for f in GREETING_HZ) < 5, peak


def test_recording_notice_reaches_the_customer(engine_factory: EngineFactory, db: Database,
                                               tmp_path: Path, qtbot: QtBot) -> None:
    from sip.config import NOTICE_WAV

    heard = tmp_path / "heard"
    heard.mkdir()
    line = SimLine(record_dir=heard)
    try:
        engine = engine_factory(consent_wav=NOTICE_WAV)
        svc = CallService(db, engine, DialPlan(PhoneNormalizer("CN"), line.domain),
                          NoCallers())
        log_id = svc.dial(None, line.uri("answer"))
        qtbot.waitUntil(lambda: svc.state_of(log_id) == CallState.CONNECTED, timeout=5000)
        qtbot.wait(1500)
        with qtbot.waitSignal(svc.call_ended, timeout=5000):
            svc.hangup(log_id)
        n = line.wait_line(r"^RECORDED (\d+)", 5).group(1)
    finally:
        line.stop()
    with wave.open(str(heard / f"heard-{n}.wav")) as w:
        rate = w.getframerate()
        audio = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)
    first = audio[: rate]  # the notice plays as soon as the call connects
    assert np.sqrt(np.mean(first**2)) > 300
    spectrum = np.abs(np.fft.rfft(first * np.hanning(len(first))))
    peak = np.fft.rfftfreq(len(first), 1 / rate)[int(np.argmax(spectrum))]
    assert abs(peak - 1400) < 10, peak
