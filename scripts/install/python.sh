#!/usr/bin/env bash
# Creates the project's virtualenv in .venv and installs the distribution with its dev extras,
# then the dev tooling (tools/: ticketing-dev), which is a distribution of its own, not in the wheel.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
VENV="$ROOT/.venv"
STAMP="$VENV/.installed-$(cat "$ROOT/pyproject.toml" "$ROOT/tools/pyproject.toml" | sha256sum | cut -c1-16)"
[ -f "$STAMP" ] && exit 0

PYTHON="${TICKETING_PYTHON:-python3}"
need_command "$PYTHON" "the platform needs Python 3.11 or newer"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "$PYTHON is older than 3.11: install Python 3.11+ or point TICKETING_PYTHON at one"
step "installing Python packages into $VENV"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
export PIP_CACHE_DIR="$TICKETING_CACHE/pip"
"$VENV/bin/python" -m pip install -q --upgrade pip >&2 \
    || die "pip could not reach PyPI; check the network to it"
"$VENV/bin/python" -m pip install -q -e "$ROOT[dev]" >&2 \
    || die "pip could not install the project's dependencies; run '$VENV/bin/pip install -e .[dev]' to see why"
"$VENV/bin/python" -m pip install -q --no-deps -e "$ROOT/tools" >&2 \
    || die "pip could not install the dev tooling; run '$VENV/bin/pip install --no-deps -e tools' to see why"
rm -f "$VENV"/.installed-* && touch "$STAMP"
