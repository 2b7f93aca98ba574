#!/bin/bash
# 10-daemon: dengond's life cycle through the real programs - -n checks,
# one daemon per queue, the control socket, alerts accepted while it was
# down delivered when it starts, the spool watched, SIGHUP and SIGTERM.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/peers.sh"
t_setup
t_contacts 50
M=$T/mail
port=$(peer_aiosmtpd "$M") || { echo "not ok 1 - aiosmtpd did not start"; exit 1; }
set_key "channel mail" port "$port"
set_key relay retry_min 1s
dg init
dg contacts import

"$DENGON_BIN/dengond" -c "$T/dengon.conf" -n >"$T/out" 2>"$T/err"
is "$?" 0 "dengond -n on a valid configuration exits 0"
printf '[relay]\nnosuchkey = 1\n' >"$T/bad.conf"
"$DENGON_BIN/dengond" -c "$T/bad.conf" -n >"$T/out" 2>"$T/err"
is "$?" 2 "dengond -n on a bad configuration exits 2"
like "$(cat "$T/err")" "bad.conf:2: .*nosuchkey" "and names the line"

# Offline first: accepted with no daemon, delivered once it starts.
exits 0 "send while dengond is down" send --to all --subject "停止中に受付"
id=$(head -1 "$T/out")
like "$(cat "$T/err")" "not running" "send says the daemon is not running"
is "$(count_state "$id" pending)" 50 "all 50 wait in the queue"
ok "dengond starts" d_start
ok "everything accepted while it was down is delivered" wait_until 30 state_is "$id" sent 50
is "$(maildir_count "$M")" 50 "50 messages reached the SMTP server"
is "$(stat -c %a "$T/dengon.sock")" 660 "the control socket is mode 0660"

# One daemon per queue.
"$DENGON_BIN/dengond" -c "$T/dengon.conf" -d >"$T/out2" 2>"$T/err2"
is "$?" 1 "a second dengond on the same queue exits 1"
like "$(cat "$T/err2")" "pid $DPID" "naming the process that holds the queue"

# A send while it runs is delivered at once (the CLI wakes it).
t0=$(date +%s%N)
exits 0 "send while dengond runs" send --to r0001,r0002 --subject "即時"
id2=$(head -1 "$T/out")
like "$(cat "$T/err")" "woken" "send wakes the daemon"
ok "delivered within 3 s" wait_until 3 state_is "$id2" sent 2
dg channels --json
is "$(json '[c["state"] for c in d["channels"]]')" "['up']" "channels: mail is up"
ok "channels: last success recorded" test "$(json 'd["channels"][0]["last_success"] is not None')" = True
is "$(json 'd["channels"][0]["backlog"]')" 0 "channels: nothing waiting"

# The spool folder is watched.
printf 'To: r0003\nSubject: スプール\n\n本文\n' >"$T/spool/tmp/a.alert"
mv "$T/spool/tmp/a.alert" "$T/spool/incoming/a.alert"
ok "a spool file is picked up without a CLI" wait_until 5 test -f "$T/spool/done/a.alert"
sid=$(sql "SELECT id FROM alert ORDER BY created DESC LIMIT 1")
ok "and delivered" wait_until 5 state_is "$sid" sent 1

# SIGHUP: a bad configuration is refused and the daemon goes on.
cp "$T/dengon.conf" "$T/good.conf"
echo "bogus line" >>"$T/dengon.conf"
kill -HUP "$DPID"
ok "a bad configuration on SIGHUP is reported" wait_until 5 grep -q "keeping the running one" "$T/dengond.log"
ok "and the daemon still runs" kill -0 "$DPID"
cp "$T/good.conf" "$T/dengon.conf"
kill -HUP "$DPID"
ok "a good one is loaded" wait_until 5 grep -q "reloaded" "$T/dengond.log"
exits 0 "send after the reload" send --to r0004 --subject "再読込後"
id3=$(head -1 "$T/out")
ok "delivered after the reload" wait_until 5 state_is "$id3" sent 1

# SIGTERM: clean exit, socket removed, lock released.
d_stop
is "$rc" 0 "SIGTERM: dengond exits 0"
ok "the control socket is removed" test ! -e "$T/dengon.sock"
ok "a new dengond can take the queue" d_start
d_stop
is "$(sql 'PRAGMA integrity_check')" ok "the queue passes integrity_check"
