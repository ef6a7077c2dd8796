#!/usr/bin/env bash
# One command: install what is needed, then run lint, types and the whole test suite
# (unit, integration against real peers and servers, end-to-end in a real window).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
bash scripts/bootstrap.sh test
export PATH="$repo/.venv/bin:$PATH"
echo "== ruff"; ruff check .
echo "== mypy"; mypy agent_desktop ui sip sync tests
echo "== pytest"
exec python -m pytest "$@"
