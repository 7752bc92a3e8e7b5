#!/bin/sh
# s_blackhole_port.sh: silently drops incoming TCP traffic to a port (iptables), then
# lets it through again.
#
# Usage:    s_blackhole_port.sh PORT [SECONDS]   (default 60 s)
# Duration: SECONDS (1..3600).
# Undo:     iptables -D INPUT -p tcp --dport PORT -j DROP -m comment --comment cme-blackhole
# Prefer the built-in network_fault:NetworkFault (fault blackhole): checked before it acts, and undone by the engine.
set -eu
port="${1:?usage: s_blackhole_port.sh PORT [SECONDS]}"
seconds="${2:-60}"
case "$port$seconds" in *[!0-9]*) echo "s_blackhole_port: PORT and SECONDS must be whole numbers" >&2; exit 2;; esac
command -v iptables >/dev/null || { echo "s_blackhole_port: iptables is required (package iptables)" >&2; exit 3; }
rule="INPUT -p tcp --dport $port -j DROP -m comment --comment cme-blackhole"
# shellcheck disable=SC2086 # the rule is meant to split into arguments
if ! iptables -I $rule 2>/dev/null; then
  echo "s_blackhole_port: cannot add an iptables rule (root and the iptables kernel modules are needed)" >&2
  exit 3
fi
# shellcheck disable=SC2086
trap 'iptables -D $rule 2>/dev/null || true' EXIT INT TERM
echo "dropping TCP to port $port for $seconds s"
sleep "$seconds"
