#!/bin/sh
# s_empty.sh: the harmless smoke test. Writes a marker file and exits 0.
#
# Usage:    s_empty.sh [MARKER_PATH]      (default /tmp/cme-smoke-test)
# Duration: instant.
# Undo:     rm MARKER_PATH
set -eu
marker="${1:-/tmp/cme-smoke-test}"
printf 'cme smoke test ran at %s on %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(hostname)" > "$marker"
echo "wrote $marker"
