#!/bin/sh
# s_stop_service.sh: stops a systemd service for a while, then starts it again
# (the original's s_stop_systemd_kafka.sh, for any service).
#
# Usage:    s_stop_service.sh NAME [SECONDS]   (default 60 s; 0 leaves it stopped)
# Duration: SECONDS (0..86400).
# Undo:     systemctl start NAME
# Prefer the built-in stop_service:StopService: checked before it acts, and undone by the engine.
set -eu
name="${1:?usage: s_stop_service.sh NAME [SECONDS]}"
seconds="${2:-60}"
case "$seconds" in ''|*[!0-9]*) echo "s_stop_service: SECONDS must be a whole number" >&2; exit 2;; esac
command -v systemctl >/dev/null || { echo "s_stop_service: systemctl is required (a systemd host)" >&2; exit 3; }
systemctl stop "$name"
echo "stopped $name"
if [ "$seconds" -gt 0 ]; then
  sleep "$seconds"
  systemctl start "$name"
  echo "started $name again after $seconds s"
fi
