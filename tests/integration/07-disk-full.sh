#!/bin/bash
# 07-disk-full: the queue on a full filesystem (a small tmpfs mounted by
# the test, as root).  `dengon send` fails with exit 1 and a clear message,
# nothing is half-written, and sending works again once space returns.
. "$(dirname "$0")/../lib.sh"
t_setup
t_contacts 2000
if [ "$(id -u)" -ne 0 ]; then
	skip "disk full" "needs root to mount a tmpfs"
	exit 0
fi
mkdir -p "$T/small"
if ! mount -t tmpfs -o size=8m tmpfs "$T/small" 2>/dev/null; then
	skip "disk full" "cannot mount a tmpfs here"
	exit 0
fi
t_cleanup_add "umount '$T/small'"
sed -i "s|^queue .*|queue = small/queue.db|" "$T/dengon.conf"
dg init
exits 0 "import 2,000 recipients onto the small filesystem" contacts import
exits 0 "a first send fits" send --to all --subject "一通目"
first=$(head -1 "$T/out")

alerts=$(sqlite3 "$T/small/queue.db" 'SELECT count(*) FROM alert')
deliveries=$(sqlite3 "$T/small/queue.db" 'SELECT count(*) FROM delivery')
# Fill the filesystem, then free 128k: enough to open the queue (its -shm
# file), not enough for another 2,000 deliveries in its -wal.
dd if=/dev/zero of="$T/small/filler" bs=64k 2>/dev/null
truncate -s -128k "$T/small/filler"
exits 1 "send on a full disk exits 1" send --to all --subject "二通目"
like "$(cat "$T/err")" "full" "the message says the disk is full"
is "$(wc -c <"$T/out")" 0 "no alert id printed"
rm -f "$T/small/filler"
is "$(sqlite3 "$T/small/queue.db" 'SELECT count(*) FROM alert')" "$alerts" "no alert half-written"
is "$(sqlite3 "$T/small/queue.db" 'SELECT count(*) FROM delivery')" "$deliveries" "no delivery half-written"
is "$(sqlite3 "$T/small/queue.db" 'PRAGMA integrity_check')" ok "the queue passes integrity_check"
exits 0 "the first alert is still readable" status "$first" --json
is "$(json 'd["recipients"]')" 2000 "with all its deliveries"
exits 0 "with space back, send works again" send --to all --subject "三通目"
