#!/bin/bash
# accept.sh - accept time: how long `dengon send --to all` takes for an
# alert to 2,000 recipients (2,000 deliveries, codes and events written in
# one transaction, committed with synchronous=FULL before it returns).
#
# How it measures: the wall time of the whole CLI process (start, config
# and directory checks, the transaction, exit), median and p95 of N runs
# (BENCH_RUNS, default 10) after one unmeasured warm-up, with no daemon
# running (nothing else touches the queue).  The queue grows by 2,000
# deliveries per run, as a real queue does.
#
#   bench/accept.sh               BENCH_RCPTS=2000 BENCH_RUNS=10
. "$(dirname "$0")/lib.sh"
N=${BENCH_RCPTS:-2000}
RUNS=${BENCH_RUNS:-10}

b_tmp
b_setup "$(peer_free_port)" 4
b_contacts "$N"
printf '大雨特別警報\n' >"$T/body.txt"
dg send --to all --subject warm-up --body-file "$T/body.txt" ||
    die "send failed: $(cat "$T/err")"
: >"$T/times"
for i in $(seq 1 "$RUNS"); do
	t0=$(now)
	dg send --to all --subject "大雨特別警報 $i" --body-file "$T/body.txt" ||
	    die "send failed: $(cat "$T/err")"
	t1=$(now)
	calc "($t1 - $t0) * 1000" >>"$T/times"
done
read -r med p95 min max n < <(stats <"$T/times")
echo "accept: dengon send --to all, $N recipients, $n runs, in ms"
echo "machine: $(machine)"
printf '  median %s  p95 %s  min %s  max %s   (target < 100 ms)\n' \
    "$med" "$p95" "$min" "$max"
