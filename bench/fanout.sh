#!/bin/bash
# fanout.sh - fan-out throughput: one alert to 2,000 recipients, each with
# a personalised message (own code, own Message-ID), to Postfix's
# smtp-sink on loopback; beside the same 2,000 messages relayed by a
# throwaway Postfix instance, and beside smtp-source writing 2,000
# messages of the same size straight into the sink (the SMTP limit of this
# machine).
#
# How it measures: each run gets a fresh smtp-sink (same program, same
# options) dumping every message to a file on tmpfs; a run starts when its
# submission starts and ends at the newest dump file's mtime once all of
# them have arrived (mtimes are stamped with a coarse clock: a few ms, small
# beside the runs).  Messages/s = messages / (end - start).
#   (a) dengon: dengond running and idle, clock starts just before
#       `dengon send --to all` (so the one-transaction accept is included);
#   (b) Postfix: the very messages dengon sent (taken back from the sink's
#       dumps) submitted with `sendmail -C DIR` (postdrop -> pickup ->
#       cleanup -> qmgr -> smtp), $(nproc) submitters in parallel; the
#       clock starts before the first sendmail.  Beside it, the same with
#       everything submitted while Postfix is stopped and the clock started
#       at `postfix start` (its relaying alone, without sendmail's cost);
#   (c) smtp-source -d -s CONC -m 2000 -l SIZE, SIZE = dengon's mean size
#       (smtp-source adds a few header lines to SIZE bytes of payload).
# dengon's channel and smtp-source use CONC sessions (BENCH_CONCURRENCY,
# default 20 = Postfix's default_destination_concurrency_limit, which the
# Postfix instance keeps).
#
#   bench/fanout.sh               BENCH_RCPTS=2000 BENCH_CONCURRENCY=20
. "$(dirname "$0")/lib.sh"
N=${BENCH_RCPTS:-2000}
CONC=${BENCH_CONCURRENCY:-20}
LIMIT=${BENCH_TIMEOUT:-600}

# ---- (a) dengon ---------------------------------------------------------
b_tmp
port=$(sink_start "$S/sink-dengon") || die "smtp-sink did not start"
b_setup "$port" "$CONC"
b_contacts "$N"
d_start
printf '関東地方に大雨特別警報が発表されました。\n河川の氾濫、土砂災害に厳重に警戒してください。\n被害の有無を本メールへの返信で報告してください。\n' >"$T/body.txt"
t0=$(now)
dg send --to all --subject "大雨特別警報" --body-file "$T/body.txt" \
    --tlp AMBER || die "send failed: $(cat "$T/err")"
t_acc=$(now)
wait_for "$LIMIT" files_ge "$S/sink-dengon" "$N" ||
    die "dengon: only $(find "$S/sink-dengon" -type f | wc -l) of $N messages in ${LIMIT}s"
t_end=$(mtimes "$S/sink-dengon" | tail -1)
d_stop
a_secs=$(calc "$t_end - $t0")
a_acc=$(calc "($t_acc - $t0) * 1000")
rcpts=$(grep -h '^X-Rcpt-Args:' "$S"/sink-dengon/* | sort -u | wc -l)
size=$(calc "int($(cat "$S"/sink-dengon/* | wc -c) / $N)")

# ---- (b) Postfix --------------------------------------------------------
sink_messages_to "$S/sink-dengon" "$T/msgs"
[ "$(find "$T/msgs" -type f | wc -l)" -eq "$N" ] ||
    die "could not take the $N messages back from the sink"
export PFCONF=$T/pf/conf MSGS=$T/msgs
# pf_submit_all - sendmail every message of $MSGS, $(nproc) at a time.
pf_submit_all() {
	# shellcheck disable=SC2016
	(cd "$MSGS" && ls) | xargs -P "$(nproc)" -n 50 sh -c 'for r; do
		/usr/sbin/sendmail -C "$PFCONF" -f alerts@relay.example.jp \
		    -- "$r" <"$MSGS/$r" 2>/dev/null || exit 255; done' sh
}
# (b2) first: everything submitted while Postfix is stopped (postdrop
# leaves it in maildrop/), then the clock runs from `postfix start`.
qport=$(sink_start "$S/sink-postfix-queued") || die "smtp-sink did not start"
pf_setup "$T/pf" "$qport"
postfix -c "$PFCONF" check >/dev/null 2>&1
pf_submit_all || die "sendmail failed"
t0=$(now)
pf_start "$T/pf" || die "Postfix did not start (see $T/pf/maillog)"
wait_for "$LIMIT" files_ge "$S/sink-postfix-queued" "$N" ||
    die "Postfix: only $(find "$S/sink-postfix-queued" -type f | wc -l) of $N queued messages in ${LIMIT}s"
t_end=$(mtimes "$S/sink-postfix-queued" | tail -1)
pf_stop "$T/pf"
q_secs=$(calc "$t_end - $t0")
# (b) end to end: Postfix running, the clock starts before the first
# sendmail.
pport=$(sink_start "$S/sink-postfix") || die "smtp-sink did not start"
postconf -c "$PFCONF" -e "relayhost = [127.0.0.1]:$pport"
pf_start "$T/pf" || die "Postfix did not start (see $T/pf/maillog)"
t0=$(now)
pf_submit_all || die "sendmail failed"
t_sub=$(now)
wait_for "$LIMIT" files_ge "$S/sink-postfix" "$N" ||
    die "Postfix: only $(find "$S/sink-postfix" -type f | wc -l) of $N messages in ${LIMIT}s"
t_end=$(mtimes "$S/sink-postfix" | tail -1)
pf_stop "$T/pf"
b_secs=$(calc "$t_end - $t0")
b_sub=$(calc "$t_sub - $t0")

# ---- (c) smtp-source ----------------------------------------------------
sport=$(sink_start "$S/sink-source") || die "smtp-sink did not start"
t0=$(now)
smtp-source -d -s "$CONC" -m "$N" -l "$size" -f alerts@relay.example.jp \
    -t member@example.jp "127.0.0.1:$sport" || die "smtp-source failed"
wait_for 60 files_ge "$S/sink-source" "$N" ||
    die "smtp-source: only $(find "$S/sink-source" -type f | wc -l) of $N messages"
t_end=$(mtimes "$S/sink-source" | tail -1)
c_secs=$(calc "$t_end - $t0")

# ---- report ---------------------------------------------------------------
echo "fan-out: $N personalised messages (mean $size bytes), $CONC sessions, to smtp-sink on 127.0.0.1"
echo "machine: $(machine)"
printf '  %-34s %8.2f s  %8.0f msg/s  (accept %.0f ms; %d distinct recipients)\n' \
    "dengon (send -> last at sink)" "$a_secs" "$(calc "$N / $a_secs")" "$a_acc" "$rcpts"
printf '  %-34s %8.2f s  %8.0f msg/s  (submission %.2f s)\n' \
    "Postfix 3.7 (sendmail -> last)" "$b_secs" "$(calc "$N / $b_secs")" "$b_sub"
printf '  %-34s %8.2f s  %8.0f msg/s  (queued first, incl. its start)\n' \
    "Postfix 3.7 (postfix start -> last)" "$q_secs" "$(calc "$N / $q_secs")"
printf '  %-34s %8.2f s  %8.0f msg/s\n' \
    "smtp-source (straight to sink)" "$c_secs" "$(calc "$N / $c_secs")"
printf '  dengon/Postfix = %.2f (target >= 2; %.2f against the queued run)   dengon/smtp-source = %.2f (target >= 0.5)\n' \
    "$(calc "$b_secs / $a_secs")" "$(calc "$q_secs / $a_secs")" "$(calc "$c_secs / $a_secs")"
