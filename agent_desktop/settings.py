"""Settings declared once (key, type, default, description), stored as TOML.

An invalid file never stops the app: defaults are used, a warning is returned for the UI,
and the bad file is kept next to the new one (`settings.toml.bad-<timestamp>`) so nothing
the user wrote is lost. Secrets are never settings: see `credentials.py`.
"""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import tomli_w

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Setting:
    """One declared option. `choices` restricts string values when given."""

    key: str
    type: type
    default: Any
    description: str
    choices: tuple[str, ...] = ()


SCHEMA: tuple[Setting, ...] = (
    Setting("general.language", str, "system", "UI language", ("system", "en", "zh_CN")),
    Setting("general.default_region", str, "CN",
            "Default country (ISO 3166 alpha-2) for phone numbers typed without +"),
    Setting("server.url", str, "", "Central server URL; empty = embedded server on loopback"),
    Setting("server.username", str, "", "Sign-in name on the central server"),
    Setting("server.verify_tls", bool, True, "Verify the server's TLS certificate"),
    Setting("server.ca_file", str, "", "Extra CA bundle for the server (PEM)"),
    Setting("server.sync_interval_s", int, 30, "Seconds between background sync rounds"),
    Setting("sip.registrar", str, "", "SIP registrar/domain; empty = simulated customer line"),
    Setting("sip.username", str, "", "SIP user name (the password lives in the keyring)"),
    Setting("sip.transport", str, "udp", "SIP transport", ("udp", "tcp", "tls")),
    Setting("sip.ca_file", str, "", "CA file used to verify a TLS registrar"),
    Setting("sip.local_port", int, 0, "Local SIP port (0 = any free port)"),
    Setting("sip.codecs", str, "G722,PCMA,PCMU", "Codec priority, comma separated"),
    Setting("sip.no_answer_timeout_s", int, 30, "Hang up a ringing outgoing call after this"),
    Setting("sip.rtp_timeout_s", int, 20,
            "End a connected call after this many seconds without audio from the other side"),
    Setting("sip.display_name", str, "", "Name shown to the people you call"),
    Setting("dialplan.prefix", str, "", "Digits put before every dialled number"),
    Setting("dialplan.strip_country_code", bool, False,
            "Dial national format (drop +CC) for numbers in the default region"),
    Setting("dialplan.domain", str, "", "Domain of the SIP URI; empty = registrar"),
    Setting("audio.input_device", str, "", "Microphone (empty = system default)"),
    Setting("audio.output_device", str, "", "Headset/speaker (empty = system default)"),
    Setting("recording.enabled", bool, True, "Record every call automatically"),
    Setting("recording.consent_notice", bool, False, "Play a consent notice before recording"),
    Setting("wrapup.required_before_next_call", bool, False,
            "Block dialling until the last call is wrapped up"),
    Setting("wrapup.dispositions", str,
            "Interested,Not interested,Call back,Voicemail,Wrong number,Do not call,Sale",
            "Dispositions offered in wrap-up (hotkeys 1–9 in this order)"),
    Setting("dialer.calling_hours", str, "09:00-21:00",
            "Local time window in which the power dialer may call a number"),
    Setting("dialer.retry_after_min", int, 60, "Retry busy/no-answer numbers after N minutes"),
    Setting("dialer.max_attempts", int, 3, "Maximum attempts per number in a call list"),
    Setting("dialer.preview_seconds", int, 10,
            "Preview mode: seconds the next customer is shown before the call"),
)

_BY_KEY = {s.key: s for s in SCHEMA}


class SettingsError(ValueError):
    """A value of the wrong type or outside its choices."""


@dataclass
class Settings:
    """Current values; `set()` validates, `save()` writes atomically."""

    path: Path
    values: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    _listeners: list[Callable[[str], None]] = field(default_factory=list, repr=False)

    @classmethod
    def load(cls, path: Path) -> Settings:
        s = cls(path=path, values={d.key: d.default for d in SCHEMA})
        if not path.exists():
            return s
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as exc:
            kept = path.with_name(f"{path.name}.bad-{datetime.now():%Y%m%d-%H%M%S}")
            try:
                path.replace(kept)
                where = f"kept as {kept.name}"
            except OSError:
                where = "left in place"
            msg = (f"Settings file {path} could not be read ({exc}); "
                   f"using defaults, bad file {where}.")
            log.warning(msg)
            s.warnings.append(msg)
            return s
        for key, value in _flatten(raw).items():
            spec = _BY_KEY.get(key)
            if spec is None:
                s.warnings.append(f"Unknown setting '{key}' ignored.")
                continue
            try:
                s.values[key] = _coerce(spec, value)
            except SettingsError as exc:
                s.warnings.append(f"{exc}; default used.")
        for w in s.warnings:
            log.warning(w)
        return s

    def get(self, key: str) -> Any:
        if key not in _BY_KEY:
            raise KeyError(key)
        return self.values[key]

    def set(self, key: str, value: Any) -> None:
        spec = _BY_KEY.get(key)
        if spec is None:
            raise KeyError(key)
        value = _coerce(spec, value)
        if self.values.get(key) != value:
            self.values[key] = value
            for cb in list(self._listeners):
                cb(key)

    def on_change(self, callback: Callable[[str], None]) -> None:
        self._listeners.append(callback)

    def save(self) -> None:
        """Write only non-default values, atomically (temp file + rename)."""
        nested: dict[str, dict[str, Any]] = {}
        for spec in SCHEMA:
            v = self.values[spec.key]
            if v != spec.default:
                section, name = spec.key.split(".", 1)
                nested.setdefault(section, {})[name] = v
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(tomli_w.dumps(nested), encoding="utf-8")
        tmp.replace(self.path)


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _coerce(spec: Setting, value: Any) -> Any:
    if spec.type is bool:
        if not isinstance(value, bool):
            raise SettingsError(f"Setting '{spec.key}' must be true or false, not {value!r}")
        return value
    if spec.type is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SettingsError(f"Setting '{spec.key}' must be a whole number, not {value!r}")
        return value
    if not isinstance(value, str):
        raise SettingsError(f"Setting '{spec.key}' must be text, not {value!r}")
    if spec.choices and value not in spec.choices:
        raise SettingsError(
            f"Setting '{spec.key}' must be one of {', '.join(spec.choices)}, not {value!r}"
        )
    return value
