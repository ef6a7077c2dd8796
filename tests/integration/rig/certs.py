"""A throwaway CA and a server certificate for 127.0.0.1, made with the openssl CLI."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Certs:
    ca: Path  # CA certificate (what the client trusts)
    server_pem: Path  # server certificate + key in one PEM (baresip's format)


def _run(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_ca(folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    _run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out",
         f"{name}.crt", "-days", "2", "-subj", f"/CN={name}", cwd=folder)
    return folder / f"{name}.crt"


def make_certs(folder: Path) -> Certs:
    ca = make_ca(folder, "test-ca")
    _run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "srv.key", "-out", "srv.csr",
         "-subj", "/CN=127.0.0.1", cwd=folder)
    (folder / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    _run("x509", "-req", "-in", "srv.csr", "-CA", ca.name, "-CAkey", "test-ca.key",
         "-CAcreateserial", "-out", "srv.crt", "-days", "2", "-extfile", "ext.cnf", cwd=folder)
    pem = folder / "srv.pem"
    pem.write_text((folder / "srv.crt").read_text() + (folder / "srv.key").read_text())
    return Certs(ca, pem)
