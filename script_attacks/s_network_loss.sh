#!/bin/sh
# s_network_loss.sh: drops a share of an interface's outgoing packets (tc netem), then
# stops dropping.
#
# Usage:    s_network_loss.sh [PERCENT] [SECONDS] [INTERFACE]   (defaults: 10 %, 60 s, eth0)
# Duration: SECONDS (1..3600).
# Undo:     tc qdisc del dev INTERFACE root netem
# Prefer the built-in network_fault:NetworkFault (fault loss): checked before it acts, and undone by the engine.
set -eu
percent="${1:-10}"
seconds="${2:-60}"
iface="${3:-eth0}"
case "$percent$seconds" in *[!0-9]*) echo "s_network_loss: PERCENT and SECONDS must be whole numbers" >&2; exit 2;; esac
if [ "$percent" -gt 100 ]; then echo "s_network_loss: PERCENT must be 0..100" >&2; exit 2; fi
command -v tc >/dev/null || { echo "s_network_loss: tc is required (package iproute2)" >&2; exit 3; }
if ! tc qdisc add dev "$iface" root netem loss "${percent}%" 2>/dev/null; then
  echo "s_network_loss: cannot add netem to $iface: needs root, the interface, and the kernel module sch_netem" >&2
  exit 3
fi
trap 'tc qdisc del dev "$iface" root netem 2>/dev/null || true' EXIT INT TERM
echo "dropping ${percent} % of $iface's packets for $seconds s"
sleep "$seconds"
