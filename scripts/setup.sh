#!/usr/bin/env bash
# Set up everything ttd needs on a Debian machine, idempotently:
#   Debian packages (gdb, gdbserver, compiler, libsqlite3/libzstd/libssl/libseccomp/libpq
#   headers, libc's debug symbols, PostgreSQL for the tests' throwaway clusters),
#   a virtual environment at .venv/ built from /usr/bin/python3 (GDB embeds the
#   system Python, so the plugin can import the same packages), and the native build.
# Quick when everything is already there.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

debs=(gdb gdbserver gcc make pkg-config libc6-dev libc6-dbg libsqlite3-dev libzstd-dev libssl-dev
      libseccomp-dev libpq-dev libxxhash-dev postgresql
      python3 python3-venv python3-dev sqlite3)
missing=()
for p in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then sudo=sudo; else sudo=; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

stamp=.venv/.ttd-installed
if [ ! -x .venv/bin/python ] || [ ! -f "$stamp" ] || [ setup.cfg -nt "$stamp" ]; then
  echo "setup: building .venv from /usr/bin/python3"
  [ -x .venv/bin/python ] || /usr/bin/python3 -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -e ".[test]"
  touch "$stamp"
fi

make -s -C native
