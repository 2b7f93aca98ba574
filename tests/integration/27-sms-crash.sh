#!/bin/bash
# sanitizer: skip
# 27-sms-crash: SIGKILL dengond at random moments while it sends an alert
# by SMS to 40 numbers through two emulated GSM modems (tests/modem/
# gsmemu.py on ptys; every +CMGS answered after 0.15 s, a status report
# 0.2 s later; the Japanese text takes 2 parts), five times, restarting it
# at once each time as a supervisor would.  A SIGKILL models a process
# crash, not a power cut: the kernel keeps what was written, and the modems
# keep running (their settings, message references and unsent output
# survive the crash).
#
# When dengond dies its modem children get SIGTERM (PR_SET_PDEATHSIG) and
# end after the command in hand; the new daemon's children open the same
# ptys.  Each kill comes 0.3-1.5 s after the new daemon handed its first
# message to a modem, so that every kill falls while sending.  What must
# hold at the end:
#  - nothing lost: no delivery pending or failed, and every number has at
#    least one complete message (all its parts) in the emulators' logs;
#  - duplicates (numbers with more than one complete message) stay within
#    the in-flight window, one message per modem per kill: the attempt a
#    modem had in hand is recovered as interrupted and sent again;
#  - the queue passes PRAGMA integrity_check after every restart and at
#    the end.
# Between a kill and the restart `dengon status` reads the queue: with
# children forked from the daemon (sharing its SQLite state) that read
# folded the WAL away under them and lost what they recorded; they now
# execute dengond afresh.
# "sent" is accepted beside "delivered", within the same window.  A status
# report is a line the modem writes on its own, and the SIM never repeats a
# +CDS.  The emulator keeps the pty's slave end open, so a report written
# while no dengon process has the port open is not lost: it waits in the
# pty's input queue and the next modem child reads it at its start.  A
# report a dying child had read only in part goes with that child: its
# delivery stays "sent" (the network took it, +CMGS; nothing more is
# known).  That can happen to one report per modem per kill.
#
# The queue is not touched between a kill and the restart, only while a
# daemon runs: a connection opened and closed while the killed daemon's
# modem children still finish their command takes itself for the last
# one, checkpoints and deletes the WAL under them, and what they record
# afterwards is lost (their SQLite connections, opened after fork() from
# dengond's, hold none of SQLite's file locks: a known problem, not what
# this test is about).
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/peers.sh"
KILLS=${DENGON_SMS_CRASH_KILLS:-5}
N=40
MODEMS=2
SMSLOG="$TESTS_DIR/modem/smslog.py"
t_setup
t_contacts $N

m1=$(peer_modem m1 --slow-cmgs 0.15 --report-delay 200) ||
    { echo "not ok 1 - modem 1 did not start"; exit 1; }
m2=$(peer_modem m2 --slow-cmgs 0.15 --report-delay 200 --mr-start 100) ||
    { echo "not ok 1 - modem 2 did not start"; exit 1; }
p1=$(readlink -f "$m1")
p2=$(readlink -f "$m2")
set_key relay retry_min 1s
set_key relay retry_max 2s
set_key "policy standard" steps "sms"
cat >>"$T/dengon.conf" <<CONF

[channel sms]
type           = sms
devices        = $p1, $p2
max_parts      = 3
CONF
dg init
exits 0 "$N recipients with SMS numbers import" contacts import
printf '配水池の水位が低下しています。\n節水へのご協力をお願いします。\n' >"$T/body.txt"
exits 0 "the alert is accepted with the daemon down" send --to all \
    --subject "障害試験" --body-file "$T/body.txt" --tlp GREEN
A=$(head -1 "$T/out")
"$DENGON_BIN/dengon" -c "$T/dengon.conf" render "$A" --recipient r0001 \
    --channel sms >"$T/render" 2>&1
echo "# $(sed -n 's/^Coding: //p' "$T/render")"

done_count() {
	sql "SELECT count(*) FROM delivery WHERE alert = '$A' AND state IN ('sent', 'delivered')"
}
# sending - this daemon has handed a message to a modem (read from its
# log: the queue is left alone while a killed daemon's children run)
sending() {
	grep -q "dengond\[$DPID\]: sms [^ ]*: attempt [0-9]*: [0-9]* parts* to" \
	    "$T/dengond.log"
}
integrity=ok
midrun=0
d_start || { echo "not ok 3 - dengond did not start"; exit 1; }
for k in $(seq "$KILLS"); do
	wait_until 15 sending
	ms=$((300 + RANDOM % 1200))
	sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
	kill -9 "$DPID"
	wait "$DPID" 2>/dev/null
	# An operator looks at the queue while no daemon runs: the last
	# connection to close folds the WAL in.  The modem children still
	# finishing must not lose what they write then (they are programs of
	# their own, never forked copies holding the daemon's SQLite state).
	"$DENGON_BIN/dengon" -c "$T/dengon.conf" status "$A" >/dev/null 2>&1
	d_start || { echo "not ok - dengond did not start after kill $k"; exit 1; }
	[ "$(sql 'PRAGMA integrity_check')" = ok ] || integrity=bad
	d=$(done_count)
	[ "$d" -lt $N ] && midrun=$((midrun + 1))
	echo "# kill $k (after ${ms} ms of sending): $d of $N sent, $(count_state "$A" delivered) delivered"
done
is "$integrity" ok "the queue passes integrity_check after every restart"
ok "the kills came while sending ($midrun of $KILLS before the end)" \
    test "$midrun" -ge 3

ok "every delivery ends up sent or delivered" wait_until 90 state_is "$A" pending 0
# the last reports come within 0.2 s; a lost one never comes
wait_until 5 state_is "$A" delivered $N
echo "# attempts recovered after the kills: $(sql "SELECT count(*) FROM event WHERE what = 'recovered'")"
ok "dengond stops" d_stop
# modem children of the killed daemons still alive (finishing a command)
orphans=0
for pid in $(sed -n 's/.*modem process \([0-9]*\) started.*/\1/p' "$T/dengond.log"); do
	kill -0 "$pid" 2>/dev/null && orphans=$((orphans + 1))
done
is "$(sql 'PRAGMA integrity_check')" ok "the queue passes integrity_check at the end"
is "$(done_count)" $N "all $N deliveries are sent or delivered (none failed)"
sent=$(count_state "$A" sent)

cat "$T/peers/m1.jsonl" "$T/peers/m2.jsonl" >"$T/both.jsonl"
"$PY" "$SMSLOG" messages "$T/both.jsonl" >"$T/sent.jsonl"
"$PY" - "$T/sent.jsonl" $N >"$T/tally" <<'PY'
import json, sys
want = {"+81900000%04d" % i for i in range(1, int(sys.argv[2]) + 1)}
per = {}
cut = 0
for line in open(sys.argv[1], encoding="utf-8"):
    m = json.loads(line)
    if m["complete"]:
        per[m["number"]] = per.get(m["number"], 0) + 1
    else:
        cut += 1
got = want & set(per)
dups = sum(n - 1 for k, n in per.items() if k in want)
multi = sum(1 for k, n in per.items() if k in want and n > 1)
print(len(got), dups, multi, len(set(per) - want), cut)
PY
read -r got dups multi stray cut <"$T/tally"
window=$((MODEMS * KILLS))
echo "# $KILLS kills: $got numbers reached; $multi with more than one complete message ($dups extra; window $window); $cut messages cut short (parts missing)"
echo "# $(count_state "$A" delivered) delivered, $sent left sent; modem processes that failed to start: $(grep -c 'modem process [0-9]* ended' "$T/dengond.log"); left running by killed daemons: $orphans"
is "$got" $N "every one of the $N numbers got at least one complete message"
is "$stray" 0 "no message went to a number not in the alert"
ok "duplicates ($dups) stay within the in-flight window ($window)" \
    test "$dups" -le "$window"
ok "deliveries left sent, their report lost with a child ($sent), stay within $window" \
    test "$sent" -le "$window"
