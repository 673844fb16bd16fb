# Sourced by the dev scripts: puts the project's own toolchain (Node 24, pnpm, the virtualenv,
# the Go-built binaries) first on PATH. ./dev/install writes the cached env file it reads.
VAULTKEEPER_CACHE="${VAULTKEEPER_CACHE:-$HOME/.cache/vaultkeeper}"
if [ -f "$VAULTKEEPER_CACHE/env.sh" ]; then
  # shellcheck disable=SC1091
  . "$VAULTKEEPER_CACHE/env.sh"
fi
