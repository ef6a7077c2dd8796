"""Settings: declared once, validated, atomic save, bad files kept and defaults used."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_desktop.settings import SCHEMA, Settings, SettingsError


def test_defaults_when_file_missing(tmp_path: Path) -> None:
    s = Settings.load(tmp_path / "settings.toml")
    assert s.get("general.default_region") == "CN"
    assert s.get("sip.no_answer_timeout_s") == 30
    assert s.warnings == []


def test_every_setting_has_a_description_and_typed_default() -> None:
    keys = [spec.key for spec in SCHEMA]
    assert len(keys) == len(set(keys))
    for spec in SCHEMA:
        assert spec.description
        assert isinstance(spec.default, spec.type)


def test_round_trip_only_non_defaults(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    s = Settings.load(path)
    s.set("sip.transport", "tls")
    s.set("dialer.max_attempts", 5)
    s.save()
    text = path.read_text(encoding="utf-8")
    assert "transport" in text and "default_region" not in text
    again = Settings.load(path)
    assert again.get("sip.transport") == "tls"
    assert again.get("dialer.max_attempts") == 5


def test_set_validates_type_and_choices(tmp_path: Path) -> None:
    s = Settings.load(tmp_path / "s.toml")
    with pytest.raises(SettingsError, match="whole number"):
        s.set("dialer.max_attempts", "three")
    with pytest.raises(SettingsError, match="one of"):
        s.set("sip.transport", "carrier-pigeon")
    with pytest.raises(KeyError):
        s.set("no.such", 1)


def test_listener_called_on_change(tmp_path: Path) -> None:
    s = Settings.load(tmp_path / "s.toml")
    seen: list[str] = []
    s.on_change(seen.append)
    s.set("general.language", "zh_CN")
    s.set("general.language", "zh_CN")  # unchanged: no second call
    assert seen == ["general.language"]


def test_corrupt_file_gives_defaults_and_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    path.write_text("this is = = not toml [", encoding="utf-8")
    s = Settings.load(path)
    assert s.get("sip.transport") == "udp"
    assert s.warnings and "could not be read" in s.warnings[0]
    kept = list(tmp_path.glob("settings.toml.bad-*"))
    assert len(kept) == 1
    assert kept[0].read_text(encoding="utf-8") == "this is = = not toml ["


def test_wrong_typed_value_falls_back_with_warning(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    path.write_text('[sip]\nno_answer_timeout_s = "soon"\ntransport = "tcp"\n[x]\ny = 1\n',
                    encoding="utf-8")
    s = Settings.load(path)
    assert s.get("sip.no_answer_timeout_s") == 30
    assert s.get("sip.transport") == "tcp"
    assert any("whole number" in w for w in s.warnings)
    assert any("Unknown setting 'x.y'" in w for w in s.warnings)
