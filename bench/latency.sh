#!/bin/bash
# latency.sh - first-delivery latency: the time from `dengon send`
# returning (the alert committed) to its first message arriving at
# Postfix's smtp-sink on loopback; median and p95 over 50 alerts, beside
# the same for a throwaway Postfix instance (from `sendmail` returning to
# arrival).
#
# How it measures: dengond runs and is idle; each alert goes to one
# recipient (BENCH_LAT_RCPTS to change it), one after the other, the next
# once the previous one has arrived.  The arrival is when the sink closes
# its dump file (at the end of DATA), seen through inotify (file mtimes
# are stamped with a coarse clock, up to 4 ms late).  For dengon the start is
# the alert's acceptance time as the queue records it (alert.created, in
# ms: the accepting transaction); the times from the CLI starting and from
# it returning (the shell's $EPOCHREALTIME) are printed too.  The daemon
# is woken as soon as the alert is committed and often delivers before the
# CLI process has exited, so "after return" can be negative.  For Postfix
# the start is `sendmail` returning (postdrop has the message in maildrop)
# and, beside it, `sendmail` starting.
#
#   bench/latency.sh              BENCH_ALERTS=50 BENCH_LAT_RCPTS=1
. "$(dirname "$0")/lib.sh"
ALERTS=${BENCH_ALERTS:-50}
RCPTS=${BENCH_LAT_RCPTS:-1}

b_tmp
port=$(sink_start "$S/sink-dengon") || die "smtp-sink did not start"
watch_start "$S/sink-dengon" "$T/arrivals-dengon"
b_setup "$port" 4
b_contacts 200
d_start
printf '震度6弱の地震が発生しました。\n被害状況を報告してください。\n' >"$T/body.txt"
targets=$(seq -f 'r%06g' 1 "$RCPTS" | paste -sd,)
: >"$T/dengon.acc"
: >"$T/dengon.ret"
: >"$T/dengon.start"
for i in $(seq 1 "$ALERTS"); do
	seen=$((i - 1))
	seen=$((seen * RCPTS))
	t0=$(now)
	dg send --to "$targets" --subject "地震情報 $i" \
	    --body-file "$T/body.txt" || die "send failed: $(cat "$T/err")"
	t1=$(now)
	ta=$(nth_arrival "$T/arrivals-dengon" $((seen + 1))) ||
	    die "alert $i did not arrive"
	nth_arrival "$T/arrivals-dengon" $((seen + RCPTS)) >/dev/null
	id=$(head -1 "$T/out")
	tc=$(sqlite3 "$T/queue.db" "SELECT created FROM alert WHERE id = '$id'")
	calc "$ta * 1000 - $tc" >>"$T/dengon.acc"
	calc "($ta - $t1) * 1000" >>"$T/dengon.ret"
	calc "($ta - $t0) * 1000" >>"$T/dengon.start"
done
d_stop

pport=$(sink_start "$S/sink-postfix") || die "smtp-sink did not start"
watch_start "$S/sink-postfix" "$T/arrivals-postfix"
pf_setup "$T/pf" "$pport"
pf_start "$T/pf" || die "Postfix did not start (see $T/pf/maillog)"
: >"$T/postfix.ret"
: >"$T/postfix.start"
for i in $(seq 1 "$ALERTS"); do
	printf 'From: alerts@relay.example.jp\nTo: r000001@example.jp\nSubject: latency %d\n\nbody\n' \
	    "$i" >"$T/msg"
	t0=$(now)
	pf_send "$T/pf" "$T/msg" r000001@example.jp || die "sendmail failed"
	t1=$(now)
	ta=$(nth_arrival "$T/arrivals-postfix" "$i") ||
	    die "message $i did not arrive"
	calc "($ta - $t1) * 1000" >>"$T/postfix.ret"
	calc "($ta - $t0) * 1000" >>"$T/postfix.start"
done
pf_stop "$T/pf"

echo "latency: first message at smtp-sink, $ALERTS alerts to $RCPTS recipient(s), in ms"
echo "machine: $(machine)"
printf '  %-40s %8s %8s %8s %8s\n' "" median p95 min max
for k in dengon.acc dengon.ret dengon.start postfix.ret postfix.start; do
	case $k in
	dengon.acc)	label="dengon: accepted -> arrival" ;;
	dengon.ret)	label="dengon: send returned -> arrival" ;;
	dengon.start)	label="dengon: send started -> arrival" ;;
	postfix.ret)	label="Postfix: sendmail returned -> arrival" ;;
	postfix.start)	label="Postfix: sendmail started -> arrival" ;;
	esac
	read -r med p95 min max _ < <(stats <"$T/$k")
	printf '  %-40s %8s %8s %8s %8s\n' "$label" "$med" "$p95" "$min" "$max"
done
echo "  target: dengon first delivery < 50 ms after accept"
