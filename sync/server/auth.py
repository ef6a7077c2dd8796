"""Login, token refresh/rotation, logout, and the `Principal` every request runs as.

Tokens are opaque random strings; only their SHA-256 is stored, so a database leak does
not leak sessions, and logout is immediate because every request looks its token up (one
driver-level primary-key join, cheap enough that no cache with a revocation delay is
needed).
Failed logins are limited per (username, client IP) in the database (`DbLoginLimiter`), so
every worker process and replica counts the same failures.
"""


import hashlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from sync.server.accounts import verify_password
from sync.server.config import ServerConfig
from sync.server.db import ServerDatabase, utcnow
from sync.server.errors import ApiError, forbidden, unauthorized
from sync.server.models import AuthSession, LoginFailure, Team, Token, User

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Principal:
    user_id: int
    username: str
    role: str
    team_id: int | None
    session_id: int


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class DbLoginLimiter:
    """At most `max_failures` failed logins per (username, ip) in a sliding window, counted
    in the `login_failures` table that all worker processes share.

    `reserve` checks the count before the password is verified and `failed` records a
    failure after, so wrong guesses already in flight when the
    limit is reached still get their answer. (Reserving a row before verifying would bound
    those too, but then six simultaneous *correct* sign-ins of one user from one address,
    e.g. a retrying client, would be refused as failures.)
    """

    PRUNE_EVERY = 1000  # reservations between global sweeps of stale rows (floods of names)

    def __init__(self, db: ServerDatabase, max_failures: int, window_s: float,
                 clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.max_failures = max_failures
        self.window_s = window_s
        self.clock = clock

    @staticmethod
    def _key(username: str, ip: str) -> tuple[str, str]:
        return username.lower()[:64], ip[:64]

    def reserve(self, username: str, ip: str) -> tuple[int, int]:
        """(seconds to wait, 0) when limited, else (0, failures in the window)."""
        user, addr = self._key(username, ip)
        now = self.clock()
        with self.db.read() as s:
            recent = s.execute(select(LoginFailure.at).where(
                LoginFailure.username == user, LoginFailure.ip == addr,
                LoginFailure.at > now - self.window_s).order_by(LoginFailure.at)
            ).scalars().all()
        if len(recent) >= self.max_failures:
            return max(1, int(recent[0] + self.window_s - now) + 1), 0
        return 0, len(recent)

    def failed(self, username: str, ip: str) -> None:
        user, addr = self._key(username, ip)

        def txn(s: Session) -> None:
            now = self.clock()
            horizon = now - self.window_s
            s.execute(delete(LoginFailure).where(LoginFailure.username == user,
                                                 LoginFailure.ip == addr,
                                                 LoginFailure.at <= horizon))
            row = LoginFailure(username=user, ip=addr, at=now)
            s.add(row)
            s.flush()
            if row.id % self.PRUNE_EVERY == 0:  # a flood of made-up names
                s.execute(delete(LoginFailure).where(LoginFailure.at <= horizon))

        self.db.run_write(txn)

    def succeeded(self, username: str, ip: str) -> None:
        user, addr = self._key(username, ip)
        self.db.run_write(lambda s: s.execute(delete(LoginFailure).where(
            LoginFailure.username == user, LoginFailure.ip == addr)))


# PostgreSQL text cannot hold NUL: such input is refused as invalid, never sent to the DB.
NO_NUL = r"^[^\x00]*$"


class LoginIn(BaseModel):
    username: str = Field(min_length=1, max_length=64, pattern=NO_NUL)
    password: str = Field(min_length=1, max_length=1024)


class RefreshIn(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=256, pattern=NO_NUL)


class LogoutIn(BaseModel):
    all_sessions: bool = False


class UserOut(BaseModel):
    id: int
    username: str
    role: str
    team: str | None


class TokensOut(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int
    refresh_expires_in: int
    user: UserOut


class LogoutOut(BaseModel):
    revoked: int


class AuthService:
    def __init__(self, db: ServerDatabase, config: ServerConfig,
                 clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.config = config
        self.clock = clock
        self.limiter = DbLoginLimiter(db, config.login_max_failures, config.login_window_s)
        # Every request runs this one primary-key join (no cache): revocation stays
        # immediate in every worker, and on the driver it costs ~0.03 ms (the ORM form of
        # the same join cost ~0.8 ms, the largest part of a small request's CPU).
        self._token_sql = db.sql(
            "SELECT t.kind, t.expires_at, s.id, s.revoked_at, u.id, u.username, u.role, "
            "u.team_id, u.active FROM tokens t JOIN auth_sessions s ON s.id = t.session_id "
            "JOIN users u ON u.id = s.user_id WHERE t.token_hash = :h")

    # -- tokens -------------------------------------------------------------------------
    def _issue(self, s: Session, session_id: int) -> tuple[str, str]:
        now = int(self.clock())
        access = "at_" + secrets.token_urlsafe(32)
        refresh = "rt_" + secrets.token_urlsafe(32)
        s.add(Token(token_hash=token_hash(access), session_id=session_id, kind="access",
                    expires_at=now + self.config.access_ttl_s))
        s.add(Token(token_hash=token_hash(refresh), session_id=session_id, kind="refresh",
                    expires_at=now + self.config.refresh_ttl_s))
        return access, refresh

    def _tokens_out(self, s: Session, user: User, access: str, refresh: str) -> TokensOut:
        team = s.get(Team, user.team_id) if user.team_id is not None else None
        return TokensOut(access_token=access, refresh_token=refresh,
                         expires_in=self.config.access_ttl_s,
                         refresh_expires_in=self.config.refresh_ttl_s,
                         user=UserOut(id=user.id, username=user.username, role=user.role,
                                      team=team.name if team else None))

    def login(self, username: str, password: str, ip: str) -> TokensOut:
        wait, _reserved = self.limiter.reserve(username, ip)
        if wait:
            log.warning("login rate limited for %r from %s", username, ip)
            raise ApiError(429, "rate_limited", f"Too many failed sign-ins; try again in "
                           f"{wait} seconds.", headers={"Retry-After": str(wait)},
                           retry_after=wait)
        with self.db.read() as s:
            user = s.execute(select(User).where(User.username == username)).scalar_one_or_none()
        if not verify_password(user.password_hash if user else None, password) or user is None:
            self.limiter.failed(username, ip)
            log.info("failed login for %r from %s", username, ip)
            raise unauthorized("invalid_credentials", "Wrong username or password.")
        self.limiter.succeeded(username, ip)
        if not user.active:
            raise forbidden("This account is disabled; ask an administrator.")

        def txn(s: Session) -> TokensOut:
            # Housekeeping: this user's tokens that expired over a day ago.
            s.execute(delete(Token).where(
                Token.expires_at < int(self.clock()) - 86400,
                Token.session_id.in_(select(AuthSession.id)
                                     .where(AuthSession.user_id == user.id))))
            sess = AuthSession(user_id=user.id, created_at=utcnow(), ip=ip)
            s.add(sess)
            s.flush()
            access, refresh = self._issue(s, sess.id)
            return self._tokens_out(s, user, access, refresh)

        return self.db.run_write(txn)

    def refresh(self, refresh_token: str) -> TokensOut:
        def txn(s: Session) -> TokensOut | ApiError:
            row = s.get(Token, token_hash(refresh_token))
            if row is None or row.kind != "refresh":
                return unauthorized("invalid_token", "This refresh token is not valid.")
            sess = s.get(AuthSession, row.session_id)
            if sess is None or sess.revoked_at is not None:
                return unauthorized("token_revoked", "This session was signed out.")
            if row.used_at is not None:
                sess.revoked_at, sess.revoked_reason = utcnow(), "refresh_reused"
                log.warning("refresh token reused for session %d: session revoked", sess.id)
                return unauthorized("refresh_reused", "This refresh token was already used; "
                                    "the session was revoked for safety. Sign in again.")
            if row.expires_at <= self.clock():
                return unauthorized("token_expired", "The session expired; sign in again.")
            user = s.get(User, sess.user_id)
            if user is None or not user.active:
                return unauthorized("token_revoked", "This account is disabled.")
            row.used_at = utcnow()
            access, refresh = self._issue(s, sess.id)
            return self._tokens_out(s, user, access, refresh)

        # A reuse revokes the session: commit that, then answer 401.
        result = self.db.run_write(txn)
        if isinstance(result, ApiError):
            raise result
        return result

    def logout(self, principal: Principal, all_sessions: bool) -> int:
        def txn(s: Session) -> int:
            q = update(AuthSession).where(AuthSession.revoked_at.is_(None))
            if all_sessions:
                q = q.where(AuthSession.user_id == principal.user_id)
            else:
                q = q.where(AuthSession.id == principal.session_id)
            res = s.execute(q.values(revoked_at=utcnow(), revoked_reason="logout"))
            return int(getattr(res, "rowcount", 0) or 0)

        return self.db.run_write(txn)

    def authenticate(self, authorization: str | None) -> Principal:
        if not authorization:
            raise unauthorized("missing_token", "Sign in first: no access token was sent.")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise unauthorized("invalid_token", "The Authorization header must be "
                               "'Bearer <access token>'.")
        with self.db.driver_read() as cur:
            cur.execute(self._token_sql, {"h": token_hash(token.strip())})
            row = cur.fetchone()
        if row is None or row[0] != "access":
            raise unauthorized("invalid_token", "The access token is not valid.")
        _kind, expires_at, session_id, revoked_at, user_id, username, role, team_id, active = row
        if revoked_at is not None:
            raise unauthorized("token_revoked", "This session was signed out or revoked.")
        if not active:
            raise unauthorized("token_revoked", "This account is disabled.")
        if expires_at <= self.clock():
            raise unauthorized("token_expired", "The access token expired; refresh it.")
        return Principal(user_id, username, role, team_id, session_id)


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def build_auth_router(auth: AuthService, current: Callable[..., Any]) -> APIRouter:
    router = APIRouter(prefix="/auth", tags=["auth"])

    @router.post("/login", response_model=TokensOut)
    def login(body: LoginIn, request: Request) -> TokensOut:
        return auth.login(body.username, body.password, client_ip(request))

    @router.post("/refresh", response_model=TokensOut)
    def refresh(body: RefreshIn) -> TokensOut:
        return auth.refresh(body.refresh_token)

    Current = Annotated[Principal, Depends(current)]

    @router.post("/logout", response_model=LogoutOut)
    def logout(principal: Current, body: LogoutIn | None = None) -> LogoutOut:
        return LogoutOut(revoked=auth.logout(principal, bool(body and body.all_sessions)))

    @router.get("/me", response_model=UserOut)
    def me(principal: Current) -> UserOut:
        with auth.db.read() as s:
            team = s.get(Team, principal.team_id) if principal.team_id is not None else None
        return UserOut(id=principal.user_id, username=principal.username, role=principal.role,
                       team=team.name if team else None)

    return router
