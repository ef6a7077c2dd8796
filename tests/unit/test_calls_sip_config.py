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


def test_rtp_timeout_and_display_name_come_from_settings(tmp_path: Path) -> None:
    s = Settings.load(tmp_path / "settings.toml")
    assert SipConfig.from_settings(s, CredentialStore()).rtp_timeout_s == 20  # default
    s.set("sip.rtp_timeout_s", 7)
    s.set("sip.display_name", ' 王小明 "Sales" ')
    cfg = SipConfig.from_settings(s, CredentialStore())
    assert (cfg.rtp_timeout_s, cfg.display_name) == (7, '王小明 "Sales"')
    assert SipConfig(rtp_timeout_s=0).problems() == [
        "The RTP timeout must be a positive number of seconds."]


def test_display_name_is_quoted_into_the_identity() -> None:
    from sip.account import identity_uri

    direct = SipConfig(display_name='Ann "A" Lee')
    assert identity_uri(direct, "127.0.0.1:5062") == \
        '"Ann \\"A\\" Lee" <sip:agent@127.0.0.1:5062>'
    registered = SipConfig(registrar="pbx.example.com:5060", username="1001",
                           display_name="王小明")
    assert identity_uri(registered, "x") == '"王小明" <sip:1001@pbx.example.com>'
    assert identity_uri(SipConfig(), "h:1") == "sip:agent@h:1"
