"""Teams, users and passwords (argon2id). Used by the admin CLI, demo seeding and login."""

from __future__ import annotations

import logging
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from sync.server.db import utcnow
from sync.server.models import ROLES, Team, User

log = logging.getLogger(__name__)

_hasher = PasswordHasher()
# Verified against when the username is unknown, so both failures cost the same time.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


class AccountError(ValueError):
    """Bad admin input; `str()` is a sentence for the operator."""


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def generate_password() -> str:
    return secrets.token_urlsafe(12)


def create_team(session: Session, name: str) -> Team:
    name = name.strip()
    if not name:
        raise AccountError("A team needs a name.")
    if session.execute(select(Team).where(Team.name == name)).scalar_one_or_none():
        raise AccountError(f"A team named {name!r} already exists.")
    team = Team(name=name, created_at=utcnow())
    session.add(team)
    session.flush()
    return team


def find_team(session: Session, name: str) -> Team:
    team = session.execute(select(Team).where(Team.name == name)).scalar_one_or_none()
    if team is None:
        raise AccountError(f"There is no team named {name!r}.")
    return team


def find_user(session: Session, username: str) -> User:
    user = session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    if user is None:
        raise AccountError(f"There is no user named {username!r}.")
    return user


def create_user(session: Session, username: str, password: str, role: str,
                team: str | None = None) -> User:
    username = username.strip()
    if not username or len(username) > 64:
        raise AccountError("A username must be 1 to 64 characters.")
    if role not in ROLES:
        raise AccountError(f"Unknown role {role!r}; use one of {', '.join(ROLES)}.")
    if len(password) < 8:
        raise AccountError("A password must be at least 8 characters.")
    if session.execute(select(User).where(User.username == username)).scalar_one_or_none():
        raise AccountError(f"A user named {username!r} already exists.")
    team_id = find_team(session, team).id if team else None
    if role == "team_lead" and team_id is None:
        raise AccountError("A team lead must belong to a team (--team).")
    user = User(username=username, password_hash=hash_password(password), role=role,
                team_id=team_id, active=True, created_at=utcnow())
    session.add(user)
    session.flush()
    log.info("created user %s (role %s)", username, role)
    return user


def set_password(session: Session, username: str, password: str) -> None:
    if len(password) < 8:
        raise AccountError("A password must be at least 8 characters.")
    find_user(session, username).password_hash = hash_password(password)
