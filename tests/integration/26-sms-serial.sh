#!/bin/bash
# 26-sms-serial: the libserialport transport's error paths, through the real
# daemon.  The daemon runs as the unprivileged user nobody (CI runs as root,
# for whom "permission denied" can never happen) with two /dev/ modems: a
# serial port nobody may not open, and one that does not exist.  Both are
# marked down with a message that says what to do, the channel with them,
# and the daemon keeps running.  `dengon channels --ports` lists the serial
# ports libserialport finds.
. "$(dirname "$0")/../lib.sh"
t_setup

# A serial port only root may open: the machine's first one, or one made here.
port=""
for p in /dev/ttyS0 /dev/ttyS1 /dev/ttyUSB0 /dev/ttyACM0; do
	[ -c "$p" ] && { port=$p; break; }
done
if [ -z "$port" ]; then
	port=/dev/ttyS0
	mknod -m 600 "$port" c 4 64 && t_cleanup_add "rm -f $port"
fi
chmod_before=$(stat -c %a "$port")
if [ "$(id -u)" -eq 0 ] && [ $((0$chmod_before & 07)) -ne 0 ]; then
	chmod o-rw "$port"
	t_cleanup_add "chmod $chmod_before $port"
fi

NB=$T/nobody
mkdir "$NB"
sed -e "s/^group .*/group          = $(id -gn nobody)/" "$T/dengon.conf" >"$NB/dengon.conf"
cat >>"$NB/dengon.conf" <<CONF

[channel sms]
type           = sms
devices        = $port, /dev/ttyDENGONmissing
CONF
sed -i -e 's/^steps .*/steps          = sms/' "$NB/dengon.conf"
printf 'id,name,sms\nr1,One,+819011112222\n' >"$NB/contacts.csv"
chown -R nobody "$NB"
asnobody() { runuser -u nobody -- "$@"; }
ok "nobody initialises its relay" asnobody "$DENGON_BIN/dengon" -c "$NB/dengon.conf" init
ok "nobody imports its contacts" asnobody "$DENGON_BIN/dengon" -c "$NB/dengon.conf" contacts import
ok "nobody sends an alert" asnobody "$DENGON_BIN/dengon" -c "$NB/dengon.conf" send --to all \
    --subject test --body-file /dev/null
asnobody "$DENGON_BIN/dengond" -c "$NB/dengon.conf" -d >"$NB/dengond.log" 2>&1 &
NPID=$!
t_cleanup_add "kill $NPID"
channels() { asnobody "$DENGON_BIN/dengon" -c "$NB/dengon.conf" channels >"$T/out" 2>&1; }
both_down() {
	channels && grep -q "^sms@$port .*down.*permission denied" "$T/out" &&
	    grep -q "^sms@/dev/ttyDENGONmissing .*down.*no such device" "$T/out"
}
ok "both modems are marked down with their reasons" wait_until 20 both_down
grep '^sms' "$T/out" | sed 's/^/# /'
like "$(grep "^sms@$port " "$T/out")" "dialout" "permission denied says which group is needed"
like "$(grep "^sms " "$T/out")" "down" "the channel is down with its modems"
ok "the daemon keeps running" kill -0 "$NPID"
is "$(sqlite3 "$NB/queue.db" "SELECT state FROM delivery")" pending \
    "the delivery waits, unharmed"
kill "$NPID"
wait "$NPID" 2>/dev/null

exits 0 "channels --ports" channels --ports
like "$(cat "$T/out")" "$port" "it lists the serial port"
exits 0 "channels --ports --json" channels --ports --json
ok "as JSON" "$PY" -c "import json,sys; d=json.load(open('$T/out')); sys.exit(0 if any(p['name'] == '$port' for p in d['ports']) else 1)"
