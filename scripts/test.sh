#!/usr/bin/env bash
# Set up (idempotent), check the style (ruff) and run the whole test suite. Fails when the
# style is off, a test fails or no test ran.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
bash scripts/setup.sh
# the style the code is kept in (pyproject.toml): a lint error or an unformatted file fails
.venv/bin/ruff check --quiet .
.venv/bin/ruff format --check --quiet .
set +e
.venv/bin/python -m pytest "$@"
rc=$?
set -e
if [ $rc -eq 5 ]; then echo "test.sh: no tests ran" >&2; exit 1; fi
exit $rc
