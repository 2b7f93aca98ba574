#!/bin/bash
# 14-crash: SIGKILL dengond at random moments of a 2,000-recipient fan-out,
# several times, restarting it each time.  A SIGKILL models a process
# crash (not a power cut: the kernel still writes what was written).
# Every recipient must receive the alert at least once; duplicates are
# counted and must stay within the in-flight window (messages that were in
# a session at a kill), and a duplicate keeps its Message-ID.  Meanwhile
# operators keep sending small alerts with the CLI: every one whose
# `dengon send` returned 0 is in the queue after every kill.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/peers.sh"
KILLS=${DENGON_CRASH_KILLS:-10}	# make torture: 100
N=2000
t_setup
t_contacts $N
M=$T/mail
port=$(peer_aiosmtpd "$M") || { echo "not ok 1 - aiosmtpd did not start"; exit 1; }
set_key "channel mail" port "$port"
set_key "channel mail" concurrency 4
dg init
dg contacts import
dg send --to all --subject "障害試験" --tlp GREEN
id=$(head -1 "$T/out")
is "$rc" 0 "the alert is accepted with the daemon down"

integrity=ok
midrun=0
lost=0
: >"$T/accepted"
for k in $(seq "$KILLS"); do
	d_start || { echo "not ok - dengond did not start"; exit 1; }
	# an operator's send racing with the daemon and the kill
	( "$DENGON_BIN/dengon" -c "$T/dengon.conf" send --to r0001 \
	    --subject "並行 $k" >"$T/send.$k" 2>/dev/null &&
	    cat "$T/send.$k" >>"$T/accepted" ) &
	spid=$!
	# a random moment, 20-300 ms into this run
	sleep "0.$(printf '%03d' $((RANDOM % 280 + 20)))"
	kill -9 "$DPID"
	wait "$DPID" 2>/dev/null
	wait "$spid"
	[ "$(sql 'PRAGMA integrity_check')" = ok ] || integrity=bad
	while read -r a; do
		[ "$(sql "SELECT count(*) FROM alert WHERE id='$a'")" = 1 ] ||
		    lost=$((lost + 1))
	done <"$T/accepted"
	sent=$(count_state "$id" sent)
	[ "$sent" -lt $N ] && midrun=$((midrun + 1))
	echo "# kill $k: $(maildir_count "$M") messages stored, $sent sent"
done
is "$integrity" ok "the queue passes integrity_check after every kill"
is "$lost" 0 "every alert whose send returned 0 is in the queue after every kill ($(wc -l <"$T/accepted") sent)"
ok "the kills came during the fan-out ($midrun of $KILLS before the end)" test "$midrun" -ge 3
recovered=$(sql "SELECT count(*) FROM event WHERE what='recovered'")
echo "# attempts recovered after the kills: $recovered"
ok "dengond starts after the last kill" d_start
ok "every delivery ends up sent" wait_until 180 state_is "$id" sent $N
others_done() { [ "$(sql "SELECT count(*) FROM delivery WHERE alert <> '$id' AND state = 'pending'")" = 0 ]; }
ok "and the racing small alerts too" wait_until 30 others_done
d_stop
"$PY" - "$M" "$id" >"$T/crash" <<'PYEOF'
import email, email.policy, mailbox, sys
box = mailbox.Maildir(sys.argv[1], factory=None, create=False)
dlv, ids, total = set(), set(), 0
for k in box.keys():
    m = email.message_from_bytes(box.get_bytes(k), policy=email.policy.default)
    if m["X-Dengon-Alert"] != sys.argv[2]:
        continue	# an operator's small alert
    dlv.add(m["X-Dengon-Delivery"]); ids.add(m["Message-ID"]); total += 1
print(len(dlv), len(ids), total)
PYEOF
read -r ndlv nids total <"$T/crash"
dups=$((total - N))
# The in-flight window: at most concurrency (4) x batch messages per kill
# (the driver's max_batch, SMTP_MAX_BATCH in channels/smtp.c).
batch=$(cat "$TESTS_DIR"/../channels/*.[ch] |
    sed -n 's/^#define SMTP_MAX_BATCH[[:space:]]*\([0-9]*\).*/\1/p' | head -1)
window=$((KILLS * 4 * batch))
echo "# $KILLS kills: $total messages for $N recipients: $dups duplicates (window $window)"
is "$ndlv" $N "every one of the $N recipients received the alert"
is "$nids" $N "duplicates keep their Message-ID ($N distinct)"
ok "duplicates ($dups) stay within the in-flight window ($window)" test "$dups" -le "$window"
