"""Every filesystem location the app uses, derived from one root.

`--data-dir` relocates all of them at once, which is what isolates tests and lets several
agent profiles live on one machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import platformdirs

APP_NAME = "agent-desktop"


@dataclass(frozen=True)
class AppPaths:
    """Resolved directories; `ensure()` creates them."""

    data_dir: Path
    config_dir: Path
    log_dir: Path
    cache_dir: Path

    @classmethod
    def from_root(cls, root: Path | None) -> AppPaths:
        """Use platformdirs locations, or everything under `root` when given."""
        if root is not None:
            root = root.expanduser().resolve()
            return cls(root / "data", root / "config", root / "log", root / "cache")
        return cls(
            Path(platformdirs.user_data_dir(APP_NAME)),
            Path(platformdirs.user_config_dir(APP_NAME)),
            Path(platformdirs.user_log_dir(APP_NAME)),
            Path(platformdirs.user_cache_dir(APP_NAME)),
        )

    @property
    def database(self) -> Path:
        return self.data_dir / "agent.sqlite3"

    @property
    def recordings_dir(self) -> Path:
        return self.data_dir / "recordings"

    @property
    def settings_file(self) -> Path:
        return self.config_dir / "settings.toml"

    @property
    def ui_state_file(self) -> Path:
        return self.config_dir / "ui-state.ini"

    @property
    def log_file(self) -> Path:
        return self.log_dir / "agent-desktop.log"

    def ensure(self) -> None:
        for d in (self.data_dir, self.config_dir, self.log_dir, self.cache_dir,
                  self.recordings_dir):
            d.mkdir(parents=True, exist_ok=True)
