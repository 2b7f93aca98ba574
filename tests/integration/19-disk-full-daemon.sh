#!/bin/bash
# 19-disk-full-daemon: the queue's filesystem fills up under a running
# daemon (a size-limited tmpfs mounted by the test, as root).  `dengon
# send` fails with exit 1 and a clear message, nothing is half-written,
# the daemon keeps delivering what it already has in the little space
# left, and everything works again once space returns.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/peers.sh"
t_setup
t_contacts 3000
if [ "$(id -u)" -ne 0 ]; then
	skip "disk full under the daemon" "needs root to mount a tmpfs"
	exit 0
fi
mkdir -p "$T/small"
if ! mount -t tmpfs -o size=16m tmpfs "$T/small" 2>/dev/null; then
	skip "disk full under the daemon" "cannot mount a tmpfs here"
	exit 0
fi
t_cleanup_add "umount -l '$T/small'"
M=$T/mail
closed=$(peer_free_port)
set_key relay queue small/queue.db
sql() { sqlite3 -batch -noheader "$T/small/queue.db" "$1"; }
set_key relay retry_min 1s
set_key relay retry_max 2s
set_key "channel mail" port "$closed"	# the SMTP server is down at first
dg init
dg contacts import
ok "dengond starts" d_start
first=$(seq -f 'r%04g' 1 300 | paste -sd,)
exits 0 "an alert to 300 is accepted" send --to "$first" --subject "満杯試験"
id=$(head -1 "$T/out")
# Fill the filesystem, then free 1 MB: room for the daemon's small
# commits, none for an alert to all 3,000.
dd if=/dev/zero of="$T/small/filler" bs=64k 2>/dev/null
truncate -s -1M "$T/small/filler"
# The SMTP server comes up.  While the queue cannot record anything, the
# daemon keeps the outcomes it has in memory and sends nothing it could
# not account for; it says why, and goes on once there is room again.
port=$(peer_aiosmtpd "$M")
set_key "channel mail" port "$port"
kill -HUP "$DPID"
ok "the daemon says the disk is full" wait_until 20 grep -q "disk is full" "$T/dengond.log"
alerts=$(sql 'SELECT count(*) FROM alert')
exits 1 "a send to 3,000 on the full disk exits 1" send --to all --subject "二通目"
like "$(cat "$T/err")" "full" "with a message that says the disk is full"
is "$(sql 'SELECT count(*) FROM alert')" "$alerts" "nothing of it was written"
ok "the daemon is still running" kill -0 "$DPID"
exits 0 "dengon status still answers" status "$id"
rm -f "$T/small/filler"
ok "with space back, the first alert is delivered" \
    wait_until 60 state_is "$id" sent 300
is "$(maildir_count "$M")" 300 "each of its 300 messages once"
exits 0 "with space back, send works again" send --to all --subject "三通目"
id3=$(head -1 "$T/out")
ok "and is delivered" wait_until 90 state_is "$id3" sent 3000
is "$(sql 'PRAGMA integrity_check')" ok "the queue passes integrity_check"
d_stop
is "$rc" 0 "dengond stops cleanly"
