"""HttpTransport over real HTTP(S) against a scripted local stub server: token refresh on
401, errors mapped to what the caller should do, timeouts, garbage bodies, TLS checks."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from agent_desktop.credentials import CredentialStore
from sync.client.errors import (
    AuthError,
    PermanentError,
    SchemaMismatch,
    TooLarge,
    TransientError,
)
from sync.client.tokens import Tokens, TokenStore
from sync.client.transport import HttpTransport, ServerConfig

if TYPE_CHECKING:
    from tests.conftest import MemoryKeyring

Reply = tuple[int, dict[str, str], bytes]
Script = Callable[[str, str, dict[str, str], bytes], Reply]


def js(code: int, body: Any, **headers: str) -> Reply:
    return code, headers, json.dumps(body).encode()


class Stub:
    """A tiny threaded HTTP server; `script` answers each request; requests are kept."""

    def __init__(self, script: Script, tls: ssl.SSLContext | None = None) -> None:
        self.script = script
        self.seen: list[tuple[str, str, dict[str, str], bytes]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _any(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                hdrs = {k.lower(): v for k, v in self.headers.items()}
                stub.seen.append((self.command, self.path, hdrs, body))
                code, headers, out = stub.script(self.command, self.path, hdrs, body)
                self.send_response(code)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_POST = do_PATCH = do_HEAD = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


StubFactory = Callable[..., Stub]


@pytest.fixture
def stub_factory() -> Iterator[StubFactory]:
    made: list[Stub] = []

    def make(script: Script, tls: ssl.SSLContext | None = None) -> Stub:
        s = Stub(script, tls)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


def transport(url: str, **cfg: Any) -> tuple[HttpTransport, TokenStore]:
    tokens = TokenStore(CredentialStore("agent-desktop-test"))
    tokens.save(Tokens("at_old", "rt_old"))
    t = HttpTransport(ServerConfig(url, **cfg), tokens)
    return t, tokens


def test_expired_access_token_is_refreshed_once_and_request_retried(
        stub_factory: StubFactory) -> None:
    def script(method: str, path: str, h: dict[str, str], body: bytes) -> Reply:
        if path == "/auth/refresh":
            assert json.loads(body) == {"refresh_token": "rt_old"}
            return js(200, {"access_token": "at_new", "refresh_token": "rt_new"})
        if h["authorization"] == "Bearer at_old":
            return js(401, {"error": "unauthorized", "reason": "token_expired",
                            "message": "expired"})
        return js(200, {"ok": True})

    stub = stub_factory(script)
    t, tokens = transport(stub.url)
    assert t.json_request("POST", "/sync/pull", what="x", json={}) == {"ok": True}
    assert [p for _, p, _, _ in stub.seen] == ["/sync/pull", "/auth/refresh", "/sync/pull"]
    assert all(h["x-schema-version"] == "1" for _, _, h, _ in stub.seen)
    saved = tokens.load()
    assert saved is not None and (saved.access, saved.refresh) == ("at_new", "rt_new")


def test_refused_refresh_means_sign_in_again_and_clears_tokens(stub_factory: StubFactory) -> None:
    stub = stub_factory(lambda m, p, h, b: js(401, {"error": "unauthorized",
                                                    "reason": "refresh_reused"}))
    t, tokens = transport(stub.url)
    with pytest.raises(AuthError, match="sign in again"):
        t.json_request("POST", "/sync/pull", what="x", json={})
    assert tokens.load() is None
    with pytest.raises(AuthError, match="Not signed in"):
        t.json_request("POST", "/sync/pull", what="x", json={})


@pytest.mark.parametrize(("reply", "error", "text"), [
    (js(503, {"error": "unavailable", "message": "db busy"}, **{"Retry-After": "7"}),
     TransientError, "db busy"),
    ((200, {}, b"<html>captive portal</html>"), TransientError, "unreadable"),
    (js(409, {"error": "schema_mismatch", "server_schema_versions": [2, 3],
              "client_schema_version": 1}), SchemaMismatch, "update the app"),
    (js(413, {"error": "too_large", "limit_bytes": 10}), TooLarge, "too large"),
    (js(422, {"error": "invalid_request", "message": "bad shape"}), PermanentError,
     "bad shape"),
    (js(403, {"error": "forbidden", "message": "client id of another user"}),
     PermanentError, "another user"),
])
def test_errors_are_mapped_to_plain_sentences(stub_factory: StubFactory, reply: Reply,
                                              error: type[Exception], text: str) -> None:
    stub = stub_factory(lambda m, p, h, b: reply)
    t, _ = transport(stub.url)
    with pytest.raises(error, match=text) as info:
        t.json_request("POST", "/sync/push", what="the upload of local changes", json={})
    if reply[0] == 503:
        assert isinstance(info.value, TransientError) and info.value.retry_after == 7


def test_read_timeout_is_a_transient_error(stub_factory: StubFactory) -> None:
    def slow(m: str, p: str, h: dict[str, str], b: bytes) -> Reply:
        time.sleep(1.0)
        return js(200, {})

    stub = stub_factory(slow)
    t, _ = transport(stub.url, read_timeout_s=0.2)
    with pytest.raises(TransientError, match="did not answer in time"):
        t.json_request("POST", "/sync/pull", what="x", json={})


def test_unreachable_server_is_a_transient_error() -> None:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t, _ = transport(f"http://127.0.0.1:{port}")
    with pytest.raises(TransientError, match="Cannot reach"):
        t.json_request("POST", "/sync/pull", what="x", json={})


def test_bad_url_is_refused_plainly() -> None:
    with pytest.raises(PermanentError, match="must start with http"):
        transport("ftp://server")


def test_login_stores_tokens_and_reports_wrong_password(stub_factory: StubFactory) -> None:
    def script(m: str, p: str, h: dict[str, str], b: bytes) -> Reply:
        creds = json.loads(b)
        if creds["password"] != "right":
            return js(401, {"error": "unauthorized", "reason": "invalid_credentials"})
        return js(200, {"access_token": "at_1", "refresh_token": "rt_1",
                        "user": {"username": "agent", "role": "agent"}})

    stub = stub_factory(script)
    t, tokens = transport(stub.url)
    tokens.clear()
    with pytest.raises(AuthError, match="Wrong user name or password"):
        t.login("agent", "wrong")
    t.login("agent", "right")
    saved = tokens.load()
    assert saved is not None and saved.refresh == "rt_1" and t.user["role"] == "agent"


def test_login_rate_limited_says_how_long_to_wait(stub_factory: StubFactory) -> None:
    stub = stub_factory(lambda m, p, h, b: js(429, {"error": "rate_limited"},
                                              **{"Retry-After": "42"}))
    t, _ = transport(stub.url)
    with pytest.raises(TransientError, match="wait 42 seconds"):
        t.login("agent", "x")


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_tls_is_verified_by_default_and_a_ca_file_makes_it_trusted(
        stub_factory: StubFactory, tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    stub = stub_factory(lambda m, p, h, b: js(200, {"ok": 1}), tls=ctx)
    t, _ = transport(stub.url)
    with pytest.raises(PermanentError, match="certificate is not trusted"):
        t.json_request("POST", "/sync/pull", what="x", json={})
    trusted, _ = transport(stub.url, ca_file=str(cert))
    assert trusted.json_request("POST", "/sync/pull", what="x", json={}) == {"ok": 1}


def test_tokens_are_kept_per_server_and_only_in_the_keyring(memory_keyring: MemoryKeyring) -> None:
    creds = CredentialStore("agent-desktop-scope-test")
    one = TokenStore(creds, scope="https://one.example/")
    two = TokenStore(creds, scope="https://two.example")
    one.save(Tokens("at_1", "rt_1"))
    assert two.load() is None  # another server never gets these
    one.remember_password("agent", "pw")
    assert two.remembered_password("agent") is None
    stored = {k[1]: v for k, v in memory_keyring.store.items()
              if k[0] == "agent-desktop-scope-test"}
    assert stored == {"server:https://one.example:access": "at_1",
                      "server:https://one.example:refresh": "rt_1",
                      "server:https://one.example:password:agent": "pw"}
    one.clear()
    one.forget_password("agent")
    assert one.load() is None and one.remembered_password("agent") is None
