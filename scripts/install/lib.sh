# Shared helpers for the install scripts: where the cache lives and how a step fails.
TICKETING_CACHE="${TICKETING_CACHE:-$HOME/.cache/ticketing}"
export TICKETING_CACHE
mkdir -p "$TICKETING_CACHE"

step() { printf '==> %s\n' "$*" >&2; }

# One sentence naming what is missing and how to fix it, then stop.
die() { printf 'ticketing: %s\n' "$*" >&2; exit 1; }

need_command() {
    command -v "$1" >/dev/null 2>&1 || die "$1 is not installed: $2"
}
