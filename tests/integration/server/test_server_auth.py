"""Auth over real HTTP: login, rate limiting, refresh rotation, logout, expiry (§1)."""

from __future__ import annotations

import httpx
from sqlalchemy import select, update

from sync.server.auth import token_hash
from sync.server.models import Token, User
from tests.integration.server.conftest import PASSWORD, ServerHandle
from tests.integration.server.harness import SCHEMA


def _login(server: ServerHandle, username: str, password: str = PASSWORD) -> httpx.Response:
    return httpx.post(server.url + "/auth/login",
                      json={"username": username, "password": password}, timeout=30)


def _me(server: ServerHandle, access: str) -> httpx.Response:
    return httpx.get(server.url + "/auth/me", headers={"Authorization": f"Bearer {access}"},
                     timeout=30)


def test_login_returns_tokens_and_user(server: ServerHandle) -> None:
    team = server.team()
    name = server.user("team_lead", team)
    r = _login(server, name)
    assert r.status_code == 200
    body = r.json()
    assert body["access_token"].startswith("at_") and body["refresh_token"].startswith("rt_")
    assert body["expires_in"] == 900 and body["token_type"] == "bearer"
    assert body["user"]["username"] == name and body["user"]["role"] == "team_lead"
    assert body["user"]["team"] == team
    assert r.headers["cache-control"] == "no-store"
    assert _me(server, body["access_token"]).json()["username"] == name
    with server.db.read() as s:
        pw_hash = s.execute(select(User.password_hash).where(User.username == name)
                            ).scalar_one()
        stored = set(s.execute(select(Token.token_hash)).scalars())
    assert pw_hash.startswith("$argon2id$")
    assert body["access_token"] not in stored and token_hash(body["access_token"]) in stored


def test_wrong_password_and_unknown_user_look_the_same(server: ServerHandle) -> None:
    name = server.user()
    a = _login(server, name, "wrong password")
    b = _login(server, "nobody-here", "wrong password")
    assert a.status_code == b.status_code == 401
    assert a.json() == b.json()
    assert a.json()["reason"] == "invalid_credentials"
    nul = _login(server, "a\x00b", "whatever")  # PostgreSQL cannot even compare it
    assert (nul.status_code, nul.json()["error"]) == (422, "invalid_request")


def test_failed_logins_are_rate_limited_per_user(server: ServerHandle) -> None:
    name, other = server.user(), server.user()
    for _ in range(5):
        assert _login(server, name, "nope").status_code == 401
    r = _login(server, name)  # even the right password is refused for now
    assert r.status_code == 429
    assert r.json()["error"] == "rate_limited"
    assert 1 <= int(r.headers["Retry-After"]) <= 61
    assert _login(server, other).status_code == 200


def test_refresh_rotates_and_reuse_revokes_the_session(server: ServerHandle) -> None:
    first = _login(server, server.user()).json()
    r = httpx.post(server.url + "/auth/refresh",
                   json={"refresh_token": first["refresh_token"]}, timeout=30)
    assert r.status_code == 200
    second = r.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert _me(server, second["access_token"]).status_code == 200
    reuse = httpx.post(server.url + "/auth/refresh",
                       json={"refresh_token": first["refresh_token"]}, timeout=30)
    assert reuse.status_code == 401 and reuse.json()["reason"] == "refresh_reused"
    after = _me(server, second["access_token"])
    assert after.status_code == 401 and after.json()["reason"] == "token_revoked"


def test_logout_revokes_access_and_refresh(server: ServerHandle) -> None:
    name = server.user()
    keep = _login(server, name).json()
    tokens = _login(server, name).json()
    h = {"Authorization": f"Bearer {tokens['access_token']}"}
    r = httpx.post(server.url + "/auth/logout", headers=h, json={}, timeout=30)
    assert r.json() == {"revoked": 1}
    r = httpx.post(server.url + "/sync/pull", headers=h | SCHEMA,
                   json={"client_id": "c", "schema_version": 1}, timeout=30)
    assert r.status_code == 401 and r.json()["reason"] == "token_revoked"
    assert "invalid_token" in r.headers["www-authenticate"]
    r = httpx.post(server.url + "/auth/refresh",
                   json={"refresh_token": tokens["refresh_token"]}, timeout=30)
    assert r.status_code == 401 and r.json()["reason"] == "token_revoked"
    assert _me(server, keep["access_token"]).status_code == 200, "other sessions stay"
    h2 = {"Authorization": f"Bearer {keep['access_token']}"}
    r = httpx.post(server.url + "/auth/logout", headers=h2, json={"all_sessions": True},
                   timeout=30)
    assert r.status_code == 200
    assert _me(server, keep["access_token"]).json()["reason"] == "token_revoked"


def test_expired_access_token_says_so(server: ServerHandle) -> None:
    tokens = _login(server, server.user()).json()
    with server.db.write() as s:
        s.execute(update(Token).where(Token.token_hash == token_hash(tokens["access_token"]))
                  .values(expires_at=1))
    r = _me(server, tokens["access_token"])
    assert r.status_code == 401 and r.json()["reason"] == "token_expired"
    r = httpx.post(server.url + "/auth/refresh",
                   json={"refresh_token": tokens["refresh_token"]}, timeout=30)
    assert r.status_code == 200, "an expired access token is renewed with the refresh token"


def test_missing_and_garbage_tokens(server: ServerHandle) -> None:
    r = httpx.post(server.url + "/sync/pull", headers=SCHEMA,
                   json={"client_id": "c", "schema_version": 1}, timeout=30)
    assert r.status_code == 401 and r.json()["reason"] == "missing_token"
    for header in ("Bearer", "Basic abc", "Bearer at_garbage", "Bearer " + "x" * 5000):
        r = httpx.get(server.url + "/auth/me", headers={"Authorization": header}, timeout=30)
        assert r.status_code == 401 and r.json()["reason"] == "invalid_token", header


def test_disabled_user_cannot_sign_in_or_use_tokens(server: ServerHandle) -> None:
    name = server.user()
    tokens = _login(server, name).json()
    with server.db.write() as s:
        s.execute(update(User).where(User.username == name).values(active=False))
    assert _login(server, name).status_code == 403
    assert _me(server, tokens["access_token"]).status_code == 401


def test_long_expired_tokens_are_cleaned_up_at_next_login(server: ServerHandle) -> None:
    name = server.user()
    old = _login(server, name).json()
    hashes = [token_hash(old["access_token"]), token_hash(old["refresh_token"])]
    with server.db.write() as s:
        s.execute(update(Token).where(Token.token_hash.in_(hashes)).values(expires_at=1))
    assert _login(server, name).status_code == 200
    with server.db.read() as s:
        left = s.execute(select(Token.token_hash).where(Token.token_hash.in_(hashes))).all()
    assert left == []
