#!/bin/sh
# s_kill_process.sh: kills every process whose name is NAME (SIGKILL by default).
#
# Usage:    s_kill_process.sh NAME [SIGNAL]   (default signal KILL)
# Duration: instant.
# Undo:     restart the process (its supervisor usually does).
# Prefer the built-in kill_process:KillProcess: checked before it acts, and undone by the engine.
set -eu
name="${1:?usage: s_kill_process.sh NAME [SIGNAL]}"
signal="${2:-KILL}"
command -v pkill >/dev/null || { echo "s_kill_process: pkill is required (package procps)" >&2; exit 3; }
if pkill "-$signal" -x "$name"; then
  echo "sent SIG$signal to every process named $name"
else
  echo "s_kill_process: no process named $name" >&2
  exit 1
fi
