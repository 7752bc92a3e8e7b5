#!/bin/sh
# s_filldisk.sh: fills a filesystem with one large file, holds it, then deletes it.
#
# Usage:    s_filldisk.sh [MEGABYTES] [SECONDS] [DIRECTORY]   (defaults: 1024 MB, 60 s, /tmp)
# Duration: SECONDS (0..3600) after the file is written.
# Undo:     the file is removed on exit; by hand: rm DIRECTORY/cme-filldisk.*
# Bound:    refused (exit 3) if it would leave less than max(1 GiB, 5 %) of the file
#           system free.
# Prefer the built-in disk_fill:DiskFill: the same bound, and its undo runs even if the
# engine or this script dies (a timer on the host, the engine's undo on halt and start).
set -eu
megabytes="${1:-1024}"
seconds="${2:-60}"
dir="${3:-/tmp}"
case "$megabytes$seconds" in *[!0-9]*) echo "s_filldisk: MEGABYTES and SECONDS must be whole numbers" >&2; exit 2;; esac
if [ ! -d "$dir" ] || [ ! -w "$dir" ]; then echo "s_filldisk: $dir is not a writable directory" >&2; exit 2; fi
# Sizes in KiB from POSIX df; the floor is max(1 GiB, 5 % of the size).
# shellcheck disable=SC2046
set -- $(df -Pk "$dir" | awk 'NR == 2 { print $2, $4 }')
floor=$(( $1 / 20 )); [ "$floor" -lt 1048576 ] && floor=1048576
if [ $(( $2 - megabytes * 1024 )) -lt "$floor" ]; then
  echo "s_filldisk: $megabytes MB would leave less than max(1 GiB, 5 %) = $(( floor / 1024 )) MB free in $dir ($(( $2 / 1024 )) MB free)" >&2
  exit 3
fi
file="$dir/cme-filldisk.$$"
trap 'rm -f "$file"' EXIT INT TERM
dd if=/dev/zero of="$file" bs=1M count="$megabytes" 2>/dev/null || echo "s_filldisk: the disk filled up before $megabytes MB"
echo "holding $(du -m "$file" | cut -f1) MB in $file for $seconds s"
sleep "$seconds"
