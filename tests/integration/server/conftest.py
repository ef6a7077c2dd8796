"""Fixtures for the sync-server suite: every test module runs once on SQLite and once on a
real temporary PostgreSQL cluster (marker `postgres`), against the server as a real
process over HTTP.

Users and teams are created directly in the server's database (the same code the admin
CLI runs), with unique names per test so tests in one module do not interfere.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from sync.server.accounts import create_team, create_user
from sync.server.db import ServerDatabase
from tests.integration.server.harness import OPEN_APIS, Api, PgCluster, ServerProcess

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery"
_counter = itertools.count(1)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    cluster = PgCluster()
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres",
                                                               marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make_db_url(backend: str, request: pytest.FixtureRequest, folder: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{folder / 'server.db'}"
    cluster: PgCluster = request.getfixturevalue("pg_cluster")
    return cluster.create_database(f"t{next(_counter)}_{folder.name}".lower()[:60])


@dataclass
class ServerHandle:
    proc: ServerProcess
    db: ServerDatabase
    backend: str

    @property
    def url(self) -> str:
        return self.proc.url

    def team(self, name: str | None = None) -> str:
        name = name or f"team{next(_counter)}"
        self.db.run_write(lambda s: create_team(s, name))
        return name

    def user(self, role: str = "agent", team: str | None = None,
             name: str | None = None) -> str:
        name = name or f"{role}{next(_counter)}"

        def txn(s: Session) -> None:
            create_user(s, name, PASSWORD, role, team)

        self.db.run_write(txn)
        return name

    def api(self, username: str, client_id: str | None = None) -> Api:
        return Api(self.url, username, PASSWORD, client_id)


def start_server(backend: str, request: pytest.FixtureRequest, folder: Path,
                 extra: list[str] | None = None) -> ServerHandle:
    folder.mkdir(parents=True, exist_ok=True)
    url = make_db_url(backend, request, folder)
    proc = ServerProcess(url, folder / "recordings", folder / "server.log", extra)
    proc.start()  # migrates the database
    return ServerHandle(proc, ServerDatabase(url), backend)


@pytest.fixture(scope="module")
def server(backend: str, request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    handle = start_server(backend, request, tmp_path_factory.mktemp(f"srv_{backend}"))
    yield handle
    handle.proc.stop()
    handle.db.dispose()
    log = handle.proc.log_text()
    assert "Traceback" not in log, f"the server logged an unexpected error:\n{log[-4000:]}"


@pytest.fixture(autouse=True)
def _close_apis() -> Iterator[None]:
    yield
    while OPEN_APIS:
        OPEN_APIS.pop().close()
