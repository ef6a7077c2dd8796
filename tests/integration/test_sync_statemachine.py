"""Hypothesis state machine: random interleavings of offline edits, note writes, tag
add/remove and syncs on three installs (one agent on two machines, their team lead)
against the real server; after everyone syncs twice, all installs hold identical rows and
every note written exists exactly once (live rows compared: tombstones of rows another
install never saw are not sent to it)."""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule
from sqlalchemy import select
from sqlalchemy.orm import Session

from agent_desktop.store.models import Customer, Note, Tag, utcnow
from tests.integration.fault_proxy import Agent, ServerProcess, User, outbox_size, snapshot

pytestmark = pytest.mark.integration

AGENT = User("hs1", "pw-hs1-secret")
LEAD = User("hslead", "pw-hslead-secret", "team_lead")
FIELDS = ("city", "company", "email", "status", "stage")
_run = itertools.count()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path_factory.mktemp("hyp-server"), [AGENT, LEAD])
    srv.start()
    yield srv
    srv.stop()


def run_machine(server: ServerProcess) -> None:
    class Convergence(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            n = next(_run)
            self.root = Path(tempfile.mkdtemp(prefix="hyp-"))
            self.agents = [Agent(f"h{n}-{i}", self.root, server.url, u)
                           for i, u in enumerate([AGENT, AGENT, LEAD])]
            self.customers: list[str] = []
            self.notes: list[str] = []

        @initialize()
        def setup(self) -> None:
            for a in self.agents:
                a.sign_in()
            first = self.agents[0]
            with first.db.transaction() as s:
                cs = [Customer(name=f"hyp {i}", owner=AGENT.username) for i in range(2)]
                s.add_all(cs)
                s.flush()
                self.customers = [c.uuid for c in cs]
            for a in self.agents:
                a.sync()

        def _customer(self, s: Session, idx: int) -> Customer | None:
            return s.scalar(select(Customer).where(
                Customer.uuid == self.customers[idx % len(self.customers)]))

        @rule(who=st.integers(0, 2), idx=st.integers(0, 1), field=st.sampled_from(FIELDS),
              value=st.text("abcxyz李", min_size=1, max_size=4))
        def edit(self, who: int, idx: int, field: str, value: str) -> None:
            a = self.agents[who]
            with a.db.transaction() as s:
                c = self._customer(s, idx)
                if c is not None:
                    setattr(c, field, value)

        @rule(who=st.integers(0, 2), idx=st.integers(0, 1))
        def note(self, who: int, idx: int) -> None:
            a = self.agents[who]
            with a.db.transaction() as s:
                c = self._customer(s, idx)
                if c is not None:
                    body = f"{a.name}#{len(self.notes)}"
                    s.add(Note(customer=c, body=body))
                    self.notes.append(body)

        @rule(who=st.integers(0, 2), idx=st.integers(0, 1), name=st.sampled_from("ab"))
        def toggle_tag(self, who: int, idx: int, name: str) -> None:
            a = self.agents[who]
            with a.db.transaction() as s:
                c = self._customer(s, idx)
                if c is None:
                    return
                live = [t for t in c.tags if t.name == name and t.deleted_at is None]
                if live:
                    live[0].deleted_at = utcnow()
                else:
                    c.tags.append(Tag(name=name))

        @rule(who=st.integers(0, 2))
        def sync(self, who: int) -> None:
            self.agents[who].sync()

        def teardown(self) -> None:
            try:
                if self.customers:
                    for _ in range(2):
                        for a in self.agents:
                            a.sync()
                    snaps = [snapshot(a, live_only=True) for a in self.agents]
                    mine = set(self.customers)

                    def ours(snap: dict[str, dict[str, object]]) -> dict[str, dict[str, object]]:
                        return {k: v for k, v in snap.items()
                                if k[9:] in mine or v.get("customer_uuid") in mine}

                    assert ours(snaps[1]) == ours(snaps[0])
                    assert ours(snaps[2]) == ours(snaps[0])
                    bodies = sorted(str(v["body"]) for k, v in ours(snaps[0]).items()
                                    if k.startswith("note:"))
                    assert bodies == sorted(self.notes)
                    assert all(outbox_size(a) == 0 for a in self.agents)
            finally:
                for a in self.agents:
                    a.close()

    Convergence.TestCase.settings = settings(
        max_examples=6, stateful_step_count=12, deadline=None,
        suppress_health_check=list(HealthCheck))
    Convergence.TestCase().runTest()


def test_random_interleavings_converge(server: ServerProcess) -> None:
    run_machine(server)
