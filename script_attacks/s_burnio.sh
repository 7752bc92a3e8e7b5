#!/bin/sh
# s_burnio.sh: loads the disk with writes and syncs for a while, then cleans up.
#
# Usage:    s_burnio.sh [SECONDS] [DIRECTORY] [MEGABYTES]   (defaults: 60 s, /tmp, 64 MB per round)
# Duration: SECONDS (1..3600).
# Undo:     nothing to undo; its scratch file is removed on exit.
# Prefer the built-in io_stress:IoStress: several writers, stress-ng where present, the
# same disk floor as disk_fill, and its workers are ended by the engine's undo.
set -eu
seconds="${1:-60}"
dir="${2:-/tmp}"
megabytes="${3:-64}"
case "$seconds$megabytes" in *[!0-9]*) echo "s_burnio: SECONDS and MEGABYTES must be whole numbers" >&2; exit 2;; esac
if [ ! -d "$dir" ] || [ ! -w "$dir" ]; then echo "s_burnio: $dir is not a writable directory" >&2; exit 2; fi
scratch="$dir/cme-burnio.$$"
trap 'rm -f "$scratch"' EXIT INT TERM
end=$(( $(date +%s) + seconds ))
rounds=0
while [ "$(date +%s)" -lt "$end" ]; do
  dd if=/dev/zero of="$scratch" bs=1M count="$megabytes" conv=fsync 2>/dev/null
  rounds=$((rounds + 1))
done
echo "wrote ${megabytes} MB $rounds times in $seconds s"
