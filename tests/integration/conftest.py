"""Integration fixtures: real pjsua2 (our SipEngine) against real peers on loopback.

pjsua2 allows one Endpoint per process at a time, so each test starts its own engine and
stops it at teardown (repeated create/destroy works in one process; the stress test of
start/stop with calls in flight runs in a subprocess so an abort shows as its exit code).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pytestqt.qtbot import QtBot

from agent_desktop.calls import CallService
from agent_desktop.dialplan import DialPlan
from agent_desktop.phones import PhoneNormalizer
from agent_desktop.store.db import Database
from sip.config import SipConfig
from sip.engine import SipEngine
from tests.integration.rig.simline import SimLine

EngineFactory = Callable[..., SipEngine]


@pytest.fixture(scope="module")
def simline() -> Iterator[SimLine]:
    line = SimLine()
    yield line
    rc = line.stop()
    assert rc == 0, "the simulated line did not shut down cleanly:\n" + "\n".join(line.lines)


@pytest.fixture
def engine_factory(qtbot: QtBot) -> Iterator[EngineFactory]:
    made: list[SipEngine] = []

    def make(**overrides: Any) -> SipEngine:
        base: dict[str, Any] = {"bind_address": "127.0.0.1", "rtp_timeout_s": 5,
                                "codecs": ("G722", "PCMA", "PCMU")}
        recorder_factory = overrides.pop("recorder_factory", None)
        bridge = overrides.pop("bridge", None)
        base.update(overrides)
        engine = SipEngine(SipConfig(**base), bridge=bridge, recorder_factory=recorder_factory)
        engine.start()
        made.append(engine)
        return engine

    yield make
    for e in made:
        e.stop()


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    d = Database.open(tmp_path / "agent.sqlite3")
    yield d
    d.close()


class NoCallers:
    def caller_id(self, number: str) -> int | None:
        return None


@pytest.fixture
def service_for(db: Database) -> Callable[..., CallService]:
    def make(engine: SipEngine, domain: str, timeout_s: int = 30) -> CallService:
        return CallService(db, engine, DialPlan(PhoneNormalizer("CN"), domain), NoCallers(),
                           no_answer_timeout_s=timeout_s)
    return make
