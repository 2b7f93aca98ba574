#!/bin/bash
# scale.sh - a large backlog: dengond's peak memory with 100,000 pending
# deliveries while the SMTP peer is down, and the time from a restart to
# the first delivery once the peer is back.
#
# How it measures:
#   1. 50 alerts to a 2,000-recipient directory are accepted with no daemon
#      running (100,000 pending deliveries; BENCH_ALERTS x BENCH_RCPTS);
#   2. dengond starts with its mail channel pointed at a closed port on
#      127.0.0.1 (retry_min 1s, retry_max 2s, so the backlog stays due) and
#      runs until every delivery has been tried at least once (at most
#      BENCH_SCALE_TIMEOUT s); its peak RSS is VmHWM of /proc/PID/status
#      (the daemon process: its session children are short-lived and not
#      counted), sampled just before it is stopped with SIGTERM;
#   3. 2 s later (everything is due again), smtp-sink starts on that port
#      and dengond is started again: "resume" is the time from starting
#      the process to the first message's arrival at the sink (dump file
#      mtime); the time to the 2,000th message and the daemon's VmHWM while
#      draining are printed too.
#
#   bench/scale.sh                BENCH_ALERTS=50 BENCH_RCPTS=2000
. "$(dirname "$0")/lib.sh"
ALERTS=${BENCH_ALERTS:-50}
N=${BENCH_RCPTS:-2000}
TIMEOUT=${BENCH_SCALE_TIMEOUT:-600}
total=$((ALERTS * N))

vm() { sed -n "s/^$2:[[:space:]]*\([0-9]*\) kB/\1/p" "/proc/$1/status"; }
tried_all() {
	[ "$(sqlite3 "$T/queue.db" 'SELECT count(DISTINCT delivery) FROM attempt')" -ge "$total" ]
}

b_tmp
port=$(peer_free_port)
BENCH_RETRY_MIN=1s BENCH_RETRY_MAX=2s b_setup "$port" 20
b_contacts "$N"
printf '大規模停電が発生しています。\n' >"$T/body.txt"
t0=$(now)
for i in $(seq 1 "$ALERTS"); do
	dg send --to all --subject "停電情報 $i" --body-file "$T/body.txt" ||
	    die "send failed: $(cat "$T/err")"
done
t_acc=$(calc "$(now) - $t0")
pending=$(sqlite3 "$T/queue.db" "SELECT count(*) FROM delivery WHERE state = 'pending'")
db_mb=$(calc "round($(stat -c %s "$T/queue.db") / 1048576, 1)")

# ---- sink down ----------------------------------------------------------
t0=$(now)
d_start
rss_start=$(vm "$DPID" VmRSS)
wait_for "$TIMEOUT" tried_all || echo "bench: not every delivery was tried within ${TIMEOUT}s" >&2
t_pass=$(calc "$(now) - $t0")
hwm_down=$(vm "$DPID" VmHWM)
d_stop
attempts=$(sqlite3 "$T/queue.db" 'SELECT count(*) FROM attempt')

# ---- sink up, restart ---------------------------------------------------
sleep 2
sink_start "$S/sink" "$port" >/dev/null || die "smtp-sink did not start"
t0=$(now)
d_start
wait_for 60 files_ge "$S/sink" 1 || die "no delivery within 60 s of the restart"
first=$(mtimes "$S/sink" | head -1)
resume=$(calc "($first - $t0) * 1000")
wait_for 300 files_ge "$S/sink" 2000 || die "2,000 messages did not arrive within 300 s"
t2000=$(calc "$(mtimes "$S/sink" | sed -n 2000p) - $t0")
hwm_up=$(vm "$DPID" VmHWM)
d_stop

echo "scale: $pending pending deliveries ($ALERTS alerts x $N recipients; queue $db_mb MB)"
echo "machine: $(machine)"
printf '  accepting the backlog (no daemon):        %.1f s\n' "$t_acc"
printf '  dengond RSS at start:                     %.1f MB\n' "$(calc "$rss_start / 1024")"
printf '  dengond peak RSS, sink down (VmHWM):      %.1f MB  (target < 32 MB; %d attempts in %.0f s)\n' \
    "$(calc "$hwm_down / 1024")" "$attempts" "$t_pass"
printf '  restart -> first delivery, sink up:       %.0f ms  (target < 1000 ms)\n' "$resume"
printf '  restart -> 2,000th delivery:              %.1f s\n' "$t2000"
printf '  dengond peak RSS while draining (VmHWM):  %.1f MB\n' "$(calc "$hwm_up / 1024")"
