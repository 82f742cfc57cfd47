#!/usr/bin/env bash
# Set up (idempotent) and run the whole test suite. Fails when a test fails or no test ran.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
bash scripts/setup.sh
set +e
.venv/bin/python -m pytest "$@"
rc=$?
set -e
if [ $rc -eq 5 ]; then echo "test.sh: no tests ran" >&2; exit 1; fi
exit $rc
