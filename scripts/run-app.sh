#!/usr/bin/env bash
# One command: install what is needed, then start Agent Desktop on its embedded default
# (demo customers, embedded sync server, simulated customer line). Extra args go to the app.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$repo/scripts/bootstrap.sh" run
exec "$repo/.venv/bin/agent-desktop" "$@"
