"""Our simulated customer line as a peer (sip.simline in its own process)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tests.integration.rig.proc import Peer

REPO = Path(__file__).resolve().parents[3]


class SimLine(Peer):
    def __init__(self, ring_ms: int = 200, hangup_after_s: float = 1.5,
                 record_dir: Path | None = None, media_timeout_s: float = 10.0) -> None:
        extra = ["--record-dir", str(record_dir)] if record_dir is not None else []
        extra += ["--media-timeout-s", str(media_timeout_s)]
        super().__init__("simline", [sys.executable, "-m", "sip.simline", "--port", "0",
                                     "--ring-ms", str(ring_ms),
                                     "--hangup-after-s", str(hangup_after_s),
                                     # A test run killed by a timeout leaves no line behind.
                                     "--exit-with-parent", str(os.getpid()), *extra],
                         cwd=REPO)
        self.port = int(self.wait_line(r"^READY port=(\d+)", 15).group(1))

    @property
    def domain(self) -> str:
        return f"127.0.0.1:{self.port}"

    def uri(self, user: str) -> str:
        return f"sip:{user}@{self.domain}"
