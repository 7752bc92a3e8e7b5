#!/bin/sh
# s_burncpu.sh: keeps every CPU busy for a while, then stops on its own.
#
# Usage:    s_burncpu.sh [SECONDS] [WORKERS]   (defaults: 60 s, one worker per CPU)
# Duration: SECONDS (1..3600).
# Undo:     nothing to undo; the workers end after SECONDS (or kill the script).
# Prefer the built-in cpu_stress:CpuStress: load_percent, stress-ng where present, and its
# workers are ended by the engine's undo (on halt too), not only by their timeout.
set -eu
seconds="${1:-60}"
workers="${2:-$(nproc 2>/dev/null || echo 1)}"
case "$seconds" in ''|*[!0-9]*) echo "s_burncpu: SECONDS must be a whole number" >&2; exit 2;; esac
case "$workers" in ''|*[!0-9]*) echo "s_burncpu: WORKERS must be a whole number" >&2; exit 2;; esac
if [ "$seconds" -lt 1 ] || [ "$seconds" -gt 3600 ]; then echo "s_burncpu: SECONDS must be 1..3600" >&2; exit 2; fi
pids=""
trap 'kill $pids 2>/dev/null || true' EXIT INT TERM
i=0
while [ "$i" -lt "$workers" ]; do
  timeout "$seconds" sh -c 'while :; do :; done' &
  pids="$pids $!"
  i=$((i + 1))
done
wait
echo "burned $workers CPU(s) for $seconds s"
