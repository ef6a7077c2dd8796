#!/usr/bin/env bash
# Installs what Agent Desktop needs on Debian 12: apt packages, a .venv at the repo root,
# and the package itself. Idempotent: re-running skips what is already there.
#   scripts/bootstrap.sh run    packages to run the app
#   scripts/bootstrap.sh test   plus SIP peers, PulseAudio, Xvfb, PostgreSQL, dev tools
set -euo pipefail
mode="${1:-run}"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

run_pkgs=(python3 python3-venv python3-dev libegl1 libgl1 libxkbcommon0 libxkbcommon-x11-0
  libfontconfig1 libdbus-1-3 libglib2.0-0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0
  libxcb-render-util0 libxcb-xinerama0 libxcb-xkb1 libxcb-cursor0 libxcb-shape0
  libxcb-randr0 libpulse0 pulseaudio pulseaudio-utils fonts-wqy-microhei
  gcc libc6-dev)  # gcc + libc6-dev: the native audio path is compiled at first use
test_pkgs=(sip-tester baresip kamailio sox tshark xvfb xauth postgresql
  gnome-keyring dbus dbus-x11 procps libportaudio2 libasound2-plugins
  util-linux mount)  # unshare + mount: the disk-full tests mount a private tmpfs

pkgs=("${run_pkgs[@]}")
[ "$mode" = "test" ] && pkgs+=("${test_pkgs[@]}")

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "bootstrap: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# pjsua2 wheels exist for Python 3.8-3.12 only; prefer 3.12, then 3.11.
py=""
for cand in python3.12 python3.11 python3; do
  if command -v "$cand" >/dev/null 2>&1 &&
     "$cand" -c 'import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] <= (3, 12) else 1)' \
       2>/dev/null; then
    py="$cand"; break
  fi
done
if [ -z "$py" ]; then
  echo "bootstrap: need Python 3.11 or 3.12 (pjsua2 has no wheels for newer Pythons)" >&2
  exit 1
fi

if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv with $py"
  "$py" -m venv .venv
fi
extra=""
[ "$mode" = "test" ] && extra="[dev]"
stamp=".venv/.installed-$mode"
want="$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "bootstrap: installing the package$extra into .venv"
  log=".venv/pip-install.log"
  if ! { .venv/bin/python -m pip install --upgrade pip &&
         .venv/bin/python -m pip install -e ".$extra"; } >"$log" 2>&1; then
    tail -40 "$log" >&2
    echo "bootstrap: pip install failed (full log: $log)" >&2
    exit 1
  fi
  .venv/bin/python -c "import PySide6, pjsua2, sqlalchemy" # fail loudly if install broke
  echo "$want" > "$stamp"
fi
