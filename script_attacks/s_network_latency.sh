#!/bin/sh
# s_network_latency.sh: adds latency to an interface's outgoing packets (tc netem),
# then removes it.
#
# Usage:    s_network_latency.sh [DELAY_MS] [SECONDS] [INTERFACE]   (defaults: 200 ms, 60 s, eth0)
# Duration: SECONDS (1..3600).
# Undo:     tc qdisc del dev INTERFACE root netem
# Prefer the built-in network_fault:NetworkFault (fault latency): checked before it acts, and undone by the engine.
set -eu
delay="${1:-200}"
seconds="${2:-60}"
iface="${3:-eth0}"
case "$delay$seconds" in *[!0-9]*) echo "s_network_latency: DELAY_MS and SECONDS must be whole numbers" >&2; exit 2;; esac
command -v tc >/dev/null || { echo "s_network_latency: tc is required (package iproute2)" >&2; exit 3; }
if ! tc qdisc add dev "$iface" root netem delay "${delay}ms" 2>/dev/null; then
  echo "s_network_latency: cannot add netem to $iface: needs root, the interface, and the kernel module sch_netem" >&2
  exit 3
fi
trap 'tc qdisc del dev "$iface" root netem 2>/dev/null || true' EXIT INT TERM
echo "added ${delay} ms to $iface for $seconds s"
sleep "$seconds"
