#!/usr/bin/env bash
# Refresh the translation catalogue from the sources, then compile it.
#   scripts/update-translations.sh          lupdate (extract tr() strings) + lrelease
# Translators edit resources/translations/agent_desktop_<lang>.ts (Qt Linguist:
# .venv/bin/pyside6-linguist), then run this again to rebuild the .qm the app loads.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
bin="$repo/.venv/bin"
langs=(zh_CN)
mapfile -t sources < <(ls ui/*.py agent_desktop/app.py sip/*.py sync/client/*.py 2>/dev/null || true)
for lang in "${langs[@]}"; do
  ts="resources/translations/agent_desktop_${lang}.ts"
  "$bin/pyside6-lupdate" -locations none -no-obsolete "${sources[@]}" -ts "$ts"
  "$bin/pyside6-lrelease" "$ts" -qm "resources/translations/agent_desktop_${lang}.qm"
done
