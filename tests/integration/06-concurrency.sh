#!/bin/bash
# 06-concurrency: programs racing on one queue - several sends at once on a
# fresh queue (migrations included) all succeed with distinct ids, and
# the queue stays consistent.
. "$(dirname "$0")/../lib.sh"
t_setup
t_contacts 500
# No init of the queue by hand: the racing programs open a fresh one.
dg init
rm -f "$T/queue.db" "$T/queue.db-wal" "$T/queue.db-shm"
"$DENGON_BIN/dengon" -c "$T/dengon.conf" init >/dev/null 2>&1 &
"$DENGON_BIN/dengon" -c "$T/dengon.conf" init >/dev/null 2>&1 &
wait
exits 0 "import" contacts import

pids=()
for i in 1 2 3 4; do
	"$DENGON_BIN/dengon" -c "$T/dengon.conf" send --to all --subject "競合 $i" \
	    >"$T/out.$i" 2>"$T/err.$i" &
	pids+=($!)
done
for i in 1 2 3 4; do
	wait "${pids[$((i - 1))]}"
	is "$?" 0 "racing send $i exits 0"
done
ids=$(cat "$T"/out.[1-4] | sort -u | wc -l)
is "$ids" 4 "four distinct alert ids"
is "$(sql 'SELECT count(*) FROM delivery')" 2000 "4 x 500 deliveries committed"
is "$(sql 'PRAGMA integrity_check')" ok "integrity_check passes"

# Status readers while a sender writes: readers never fail (WAL).
"$DENGON_BIN/dengon" -c "$T/dengon.conf" send --to all --subject "書き込み中" >/dev/null 2>&1 &
spid=$!
fails=0
for i in 1 2 3 4 5; do
	dg status >/dev/null || fails=$((fails + 1))
done
wait $spid
is "$fails" 0 "status answers while a send is committing"
