"""SIP config from settings + keyring, registration wording and backoff (no pjsua2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_desktop.credentials import CredentialStore
from agent_desktop.phone import RegState
from agent_desktop.settings import Settings
from sip.config import SipConfig, credential_name
from sip.registration import RegistrationPolicy, describe_registration


def test_from_settings_reads_password_from_keyring(tmp_path: Path) -> None:
    s = Settings.load(tmp_path / "settings.toml")
    creds = CredentialStore()
    s.set("sip.registrar", "pbx.example.com:5060")
    s.set("sip.username", "1001")
    s.set("sip.codecs", "PCMA, G722")
    creds.set(credential_name("1001", "pbx.example.com:5060"), "s3cret")
    cfg = SipConfig.from_settings(s, creds, recordings_dir=tmp_path / "rec")
    assert (cfg.registrar, cfg.username, cfg.password) == ("pbx.example.com:5060", "1001",
                                                           "s3cret")
    assert cfg.codecs == ("PCMA", "G722")
    assert cfg.recordings_dir == tmp_path / "rec"
    assert cfg.bind_address == ""
    assert "s3cret" not in repr(cfg)
    assert cfg.problems() == []


def test_embedded_default_binds_loopback_and_recording_can_be_off(tmp_path: Path) -> None:
    s = Settings.load(tmp_path / "settings.toml")
    s.set("recording.enabled", False)
    cfg = SipConfig.from_settings(s, CredentialStore(), recordings_dir=tmp_path)
    assert (cfg.registrar, cfg.bind_address, cfg.recordings_dir) == ("", "127.0.0.1", None)


@pytest.mark.parametrize(
    ("code", "reason", "expiration", "state", "text"),
    [
        (200, "OK", 300, RegState.REGISTERED, "Registered"),
        (200, "OK", 0, RegState.UNREGISTERED, "Not registered"),
        (403, "Forbidden", 0, RegState.FAILED, "Wrong password (403)"),
        (401, "Unauthorized", 0, RegState.FAILED, "Wrong password (401)"),
        (408, "Request Timeout", 0, RegState.FAILED, "Registrar unreachable (408)"),
        (503, "Service Unavailable", 0, RegState.FAILED, "Registrar unreachable (503)"),
        (404, "Not Found", 0, RegState.FAILED, "Unknown SIP user (404)"),
        (500, "Oops", 0, RegState.FAILED, "Registration refused: Oops (500)"),
    ],
)
def test_registration_wording(code: int, reason: str, expiration: int, state: RegState,
                              text: str) -> None:
    assert describe_registration(code, reason, expiration) == (state, text)


def test_backoff_grows_caps_and_resets() -> None:
    p = RegistrationPolicy((2, 5, 10))
    assert [p.next_delay() for _ in range(5)] == [2, 5, 10, 10, 10]
    p.succeeded()
    assert p.next_delay() == 2
    with pytest.raises(ValueError, match="positive"):
        RegistrationPolicy(())


def test_consent_notice_only_when_recording(tmp_path: Path) -> None:
    from sip.config import NOTICE_WAV

    s = Settings.load(tmp_path / "settings.toml")
    s.set("recording.consent_notice", True)
    cfg = SipConfig.from_settings(s, CredentialStore(), recordings_dir=tmp_path)
    assert cfg.consent_wav == NOTICE_WAV and NOTICE_WAV.is_file()
    s.set("recording.enabled", False)
    assert SipConfig.from_settings(s, CredentialStore()).consent_wav is None
    bad = SipConfig(consent_wav=tmp_path / "missing.wav")
    assert any("does not exist" in p for p in bad.problems())
