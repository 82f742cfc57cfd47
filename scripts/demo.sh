#!/usr/bin/env bash
# The main job on the shipped example, from a fresh machine: set up, record
# examples/bank.c at every transfer(), list the timeline, then call functions
# as they were at a past tick and show which pages the call dirtied.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
bash scripts/setup.sh
make -s -C examples bank
ttd=.venv/bin/ttd
db=examples/bank.db
rm -f "$db"

echo "== ttd record -o $db --break transfer -- examples/bank 5"
"$ttd" record -o "$db" --break transfer -- examples/bank 5
echo
echo "== ttd timeline $db"
"$ttd" timeline "$db"
echo
echo "== in GDB: call-at-time 3 balance_of(1), then call-at-time 3 transfer(1, 2, 50)"
gdb -nx -q -batch \
  -ex "source gdb_plugin/ttd.py" \
  -ex "ttd open $db" \
  -ex "call-at-time 3 balance_of(1)" \
  -ex "call-at-time 3 transfer(1, 2, 50)" \
  -ex "info dirtied-pages" \
  -ex "info dirtied-pages &ledger" \
  -ex "ttd close"
echo
echo "== ttd call $db --at 3 --json 'transfer(1, 2, 50)'"
"$ttd" call "$db" --at 3 --json 'transfer(1, 2, 50)'
echo
echo "== ttd sweep $db 'balance_of(1)': one process moved from tick to tick"
"$ttd" sweep "$db" 'balance_of(1)'
