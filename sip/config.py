"""What the SIP engine needs to know, gathered once from settings and the keyring.

Why a frozen dataclass rather than reading settings inside the engine: the engine can be
started in a test or a benchmark with exactly the values it needs (loopback address,
short RTP timeout) and no settings file, and a settings change means a new config and a
clean re-registration instead of half-applied values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from agent_desktop.credentials import CredentialStore
from agent_desktop.settings import Settings

TRANSPORTS = ("udp", "tcp", "tls")
NOTICE_WAV = Path(__file__).resolve().parent.parent / "resources" / "media" / \
    "recording_notice.wav"


def credential_name(username: str, registrar: str) -> str:
    """Keyring entry that holds the SIP password for this account."""
    return f"sip:{username}@{registrar}"


@dataclass(frozen=True)
class SipConfig:
    registrar: str = ""  # host[:port]; "" = no registration, direct calls
    username: str = ""
    password: str = field(default="", repr=False)
    transport: str = "udp"
    ca_file: str = ""  # CA bundle used to verify a TLS registrar (verification always on)
    local_port: int = 0
    bind_address: str = ""  # "" = all interfaces; tests use 127.0.0.1
    codecs: tuple[str, ...] = ("G722", "PCMA", "PCMU")
    rtp_timeout_s: int = 20  # no RTP for this long on a connected call = connection lost
    reg_expires_s: int = 300
    reg_backoff_s: tuple[int, ...] = (2, 5, 10, 30, 60, 120, 300)
    stats_interval_ms: int = 1000
    poll_interval_ms: int = 10
    user_agent: str = "Agent Desktop"
    pj_log_file: str = ""  # pjsip's own log (level 4) when set
    recordings_dir: Path | None = None  # None = do not record
    consent_wav: Path | None = None  # played to the customer when the call connects
    display_name: str = ""

    def problems(self) -> list[str]:
        """Plain sentences for every value that makes the config unusable."""
        out: list[str] = []
        if self.transport not in TRANSPORTS:
            out.append(f"SIP transport must be one of {', '.join(TRANSPORTS)}, "
                       f"not '{self.transport}'.")
        if self.registrar and not self.username:
            out.append("A SIP user name is needed to register with "
                       f"{self.registrar}.")
        if self.transport == "tls":
            if not self.ca_file:
                out.append("TLS needs a CA file (sip.ca_file) to verify the registrar.")
            elif not Path(self.ca_file).is_file():
                out.append(f"The CA file {self.ca_file} does not exist.")
        if not 0 <= self.local_port <= 65535:
            out.append(f"Local SIP port {self.local_port} is out of range.")
        if self.consent_wav is not None and not self.consent_wav.is_file():
            out.append(f"The recording notice {self.consent_wav} does not exist.")
        if self.rtp_timeout_s <= 0:
            out.append("The RTP timeout must be a positive number of seconds.")
        return out

    @classmethod
    def from_settings(cls, settings: Settings, credentials: CredentialStore, *,
                      recordings_dir: Path | None = None, pj_log_file: str = "") -> SipConfig:
        registrar = settings.get("sip.registrar").strip()
        username = settings.get("sip.username").strip()
        password = ""
        if registrar and username:
            password = credentials.get(credential_name(username, registrar)) or ""
        record = settings.get("recording.enabled")
        consent = NOTICE_WAV if record and settings.get("recording.consent_notice") else None
        codecs = tuple(c.strip() for c in settings.get("sip.codecs").split(",") if c.strip())
        return cls(
            registrar=registrar, username=username, password=password,
            transport=settings.get("sip.transport"), ca_file=settings.get("sip.ca_file"),
            local_port=settings.get("sip.local_port"),
            bind_address="" if registrar else "127.0.0.1",
            codecs=codecs, pj_log_file=pj_log_file,
            recordings_dir=recordings_dir if record else None, consent_wav=consent,
            rtp_timeout_s=settings.get("sip.rtp_timeout_s"),
            display_name=settings.get("sip.display_name").strip(),
        )
