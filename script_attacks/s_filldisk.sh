#!/bin/sh
# s_filldisk.sh: fills a filesystem with one large file, holds it, then deletes it.
#
# Usage:    s_filldisk.sh [MEGABYTES] [SECONDS] [DIRECTORY]   (defaults: 1024 MB, 60 s, /tmp)
# Duration: SECONDS (0..3600) after the file is written.
# Undo:     the file is removed on exit; by hand: rm DIRECTORY/cme-filldisk.*
set -eu
megabytes="${1:-1024}"
seconds="${2:-60}"
dir="${3:-/tmp}"
case "$megabytes$seconds" in *[!0-9]*) echo "s_filldisk: MEGABYTES and SECONDS must be whole numbers" >&2; exit 2;; esac
if [ ! -d "$dir" ] || [ ! -w "$dir" ]; then echo "s_filldisk: $dir is not a writable directory" >&2; exit 2; fi
file="$dir/cme-filldisk.$$"
trap 'rm -f "$file"' EXIT INT TERM
dd if=/dev/zero of="$file" bs=1M count="$megabytes" 2>/dev/null || echo "s_filldisk: the disk filled up before $megabytes MB"
echo "holding $(du -m "$file" | cut -f1) MB in $file for $seconds s"
sleep "$seconds"
