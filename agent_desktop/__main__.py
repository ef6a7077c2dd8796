"""`python -m agent_desktop` and the `agent-desktop` gui script."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    from agent_desktop.app import run

    return run(argv)


if __name__ == "__main__":
    sys.exit(main())
