#!/bin/bash
# sms.sh - SMS throughput with 1, 2 and 4 emulated GSM modems, each with a
# fixed per-message latency, as a fraction of their combined capacity.
#
# How it measures: for each N, N emulators (tests/modem/gsmemu.py on ptys,
# started through tests/peers.sh) each answer every AT+CMGS after LATENCY
# seconds (--slow-cmgs; a real network takes 1-4 s) and send a status
# report REPORT ms later; one sms channel over all N (one modem process
# each, one message in flight per modem); one alert to PER x N recipients,
# a short English text (language = en, ASCII subject and body) that stays
# one GSM 7-bit part, checked with `dengon render` before the run.  dengond
# is running and every modem up before the clock starts, just before
# `dengon send --to all` (so the accept is included); the run ends at the
# newest attempt's finish time in the queue (dengon's own record of the
# +CMGS answer), once every delivery is at least sent.  Then:
#   messages/s = messages / (end - start)
#   capacity   = N / LATENCY messages/s (every modem always busy)
#   fraction   = messages/s / capacity
#   overhead   = (end - start) / (messages / N) - LATENCY: what each message
#                costs a modem beyond the network's latency (the accept,
#                spread over the run; dispatch; the AT dialogue over the
#                pty; recording the part and the outcome)
# Beside it, when the last status report was recorded (every delivery
# delivered), and how the messages fell on the modems.
#
#   bench/sms.sh        BENCH_SMS_LATENCY=0.5 BENCH_SMS_PER_MODEM=40
#                       BENCH_SMS_REPORT_MS=50 BENCH_SMS_MODEMS="1 2 4"
. "$(dirname "$0")/lib.sh"
# shellcheck disable=SC2034  # read by peers.sh: where the modem emulator is
TESTS_DIR=$TOP/tests
LAT=${BENCH_SMS_LATENCY:-0.5}
PER=${BENCH_SMS_PER_MODEM:-40}
REPORT=${BENCH_SMS_REPORT_MS:-50}
COUNTS=${BENCH_SMS_MODEMS:-1 2 4}
LIMIT=${BENCH_TIMEOUT:-600}

b_tmp
BASE=$T
t_cleanup_add "[ -z \"\${KEEP:-}\" ] && rm -rf '$BASE'"

# s_setup DEVICES - a dengon configuration in $T: one sms channel over
# DEVICES (comma-separated), one policy, English texts.
s_setup() {
	b_relay_conf en
	cat >>"$T/dengon.conf" <<CONF

[channel sms]
type           = sms
devices        = $1

[policy standard]
steps          = sms
repeat         = 1h
expire         = 24h
CONF
}

# s_contacts M - $T/contacts.csv with M recipients r000001.. (SMS only),
# then init and import.
s_contacts() {
	awk -v n="$1" 'BEGIN {
		print "id,name,org,groups,sms"
		for (i = 1; i <= n; i++)
			printf "r%06d,Recipient %d,Utility %d,members,090-%04d-%04d\n",
			    i, i, i, int(i / 10000), i % 10000
	}' >"$T/contacts.csv"
	dg init >/dev/null || die "dengon init failed: $(cat "$T/err")"
	dg contacts import >/dev/null ||
	    die "contacts import failed: $(head -3 "$T/err")"
}

q() { sqlite3 -batch -noheader "$T/queue.db" "$1"; }
modems_up() { [ "$("$DENGON_BIN/dengon" -c "$T/dengon.conf" channels 2>/dev/null |
    grep -c ' modem  *up ')" -ge "$1" ]; }
all_sent() { [ "$(q "SELECT count(*) FROM delivery WHERE state IN ('sent', 'delivered')")" -ge "$1" ]; }
all_delivered() { [ "$(q "SELECT count(*) FROM delivery WHERE state = 'delivered'")" -ge "$1" ]; }

printf 'Supply paused.\n' >"$BASE/body.txt"
rows=()
for n in $COUNTS; do
	T=$BASE/n$n
	mkdir -p "$T"
	chmod 755 "$T"
	devs=""
	for i in $(seq "$n"); do
		link=$(peer_modem "m$i" --slow-cmgs "$LAT" --report-delay "$REPORT" \
		    --mr-start $((i * 40))) || die "modem emulator $i did not start"
		devs="$devs${devs:+, }$(readlink -f "$link")"
	done
	m=$((PER * n))
	s_setup "$devs"
	s_contacts "$m"
	d_start
	wait_for 60 modems_up "$n" || die "$n modems: not all up after 60 s (see $T/dengond.log)"
	t0=$(now)
	dg send --to all --subject "Water alert" --body-file "$BASE/body.txt" \
	    --tlp AMBER || die "send failed: $(cat "$T/err")"
	t_acc=$(now)
	A=$(head -1 "$T/out")
	wait_for "$LIMIT" all_sent "$m" ||
	    die "$n modems: only $(q "SELECT count(*) FROM delivery WHERE state <> 'pending'") of $m sent in ${LIMIT}s"
	t_end=$(q "SELECT max(finished) / 1000.0 FROM attempt WHERE outcome = 'ok'")
	wait_for 60 all_delivered "$m" || echo "bench: $n modems: not every report came" >&2
	t_dlv=$(q "SELECT max(reported) / 1000.0 FROM sms_part")
	d_stop
	"$DENGON_BIN/dengon" -c "$T/dengon.conf" render "$A" --recipient r000001 \
	    --channel sms >"$T/render" 2>/dev/null
	coding=$(sed -n 's/^Coding: //p' "$T/render")
	case $coding in
	*", 1 part "*) ;;
	*) die "the text is not one part ($coding): the figures would not mean what they say" ;;
	esac
	tries=$(q "SELECT count(*) FROM attempt")
	spread=""
	for i in $(seq "$n"); do
		spread="$spread${spread:+/}$(peer_modem_count "m$i" submit 2>/dev/null)"
	done
	_peer_stop_all
	secs=$(calc "$t_end - $t0")
	rate=$(calc "$m / $secs")
	cap=$(calc "$n / $LAT")
	rows+=("$(printf '%6d %8d %9.2f %9.2f %9.2f %9.2f %10.0f %9.2f %9.0f  %s' \
	    "$n" "$m" "$secs" "$rate" "$cap" "$(calc "$rate / $cap")" \
	    "$(calc "($secs / ($m / $n) - $LAT) * 1000")" \
	    "$(calc "$t_dlv - $t0")" "$(calc "($t_acc - $t0) * 1000")" \
	    "$spread$([ "$tries" != "$m" ] && echo " ($tries attempts)")")")
done
T=$BASE

echo "sms: one alert to $PER recipients per modem ($coding), $LAT s per message"
echo "     at each modem (+CMGS answered after --slow-cmgs $LAT), status reports ${REPORT} ms later"
echo "machine: $(machine)"
printf '%6s %8s %9s %9s %9s %9s %10s %9s %9s  %s\n' modems messages "secs" \
    "msg/s" capacity fraction "overhead" delivered accept "per modem"
printf '%6s %8s %9s %9s %9s %9s %10s %9s %9s  %s\n' "" "" "" "" "msg/s" "" \
    "ms/msg" "secs" "ms" ""
for r in "${rows[@]}"; do echo "$r"; done
