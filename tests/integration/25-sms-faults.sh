#!/bin/bash
# sanitizer: skip
# 25-sms-faults: what a modem and the network do wrong, through the real
# daemon and the modem emulator (on TCP this time: the tcp: transport of
# serial servers).  Each fault ends in the right outcome within its
# timeout, and the daemon answers `dengon status` within a second
# throughout:
#  - the network refuses a number (+CMS ERROR: 21): permfail, not retried;
#  - a status report says the message failed (TP-ST 0x41): permfail;
#  - +CMS ERROR: 500 (the modem): tempfail, retried, sent once it recovers;
#  - a slow +CMGS (3 s) and line noise: still sent;
#  - a modem that goes silent: commands time out, it is reset (AT+CFUN),
#    and the messages go out after the reset;
#  - a SIM with a PIN: entered once from pin_files; a wrong PIN is never
#    tried a second time (the SIM would lock) and the modem stays down.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/peers.sh"
t_setup

port=$(peer_modem_tcp m --cms +819011110001=21 --fail +819011110002 --pin 4321) ||
    { echo "not ok 1 - the modem emulator did not start"; exit 1; }
echo 4321 >"$T/sim.pin"
set_key relay retry_min 1s
set_key relay retry_max 2s
set_key "policy standard" steps "sms"
cat >>"$T/dengon.conf" <<CONF

[channel sms]
type           = sms
devices        = tcp:127.0.0.1:$port
pin_files      = sim.pin
max_parts      = 2
CONF
cat >"$T/contacts.csv" <<'CSV'
id,name,mail,sms
refused,Refused,a@example.jp,+819011110001
bounced,Bounced,b@example.jp,+819011110002
ok1,Ok One,c@example.jp,+819011110003
ok2,Ok Two,d@example.jp,+819011110004
ok3,Ok Three,e@example.jp,+819011110005
ok4,Ok Four,f@example.jp,+819011110006
CSV
dg init
exits 0 "contacts import" contacts import
responsive() {
	local t0 t1
	t0=$(date +%s%N)
	"$DENGON_BIN/dengon" -c "$T/dengon.conf" status >/dev/null 2>&1 || return 1
	t1=$(date +%s%N)
	[ $(((t1 - t0) / 1000000)) -lt 1000 ]
}
att() {	# att RECIPIENT: its attempts as outcome:error, one per line
	sql "SELECT a.outcome || ':' || coalesce(a.error, '') FROM attempt a JOIN delivery d ON d.id = a.delivery WHERE d.recipient = '$1' ORDER BY a.id"
}

ok "dengond starts" d_start
ok "the modem comes up with its PIN" wait_until 20 bash -c \
    "grep -q 'modem ready' '$T/dengond.log'"
is "$(grep -c '"ev": *"pin"' "$T/peers/m.jsonl")" 1 "the PIN was entered once"
ok "the PIN is not in the daemon's log" bash -c "! grep -q 4321 '$T/dengond.log'"

# (a Japanese text: UCS2, two parts even for a short alert)
# --- permanent: refused number, failed status report ------------------------
exits 0 "send to refused, bounced, ok1" send --to refused,bounced,ok1 \
    --subject "Test 1" --body-file /dev/null
A1=$(head -1 "$T/out")
ok "ok1 is delivered" wait_until 30 state_is "$A1" delivered 1
ok "refused and bounced fail" wait_until 30 state_is "$A1" failed 2
is "$(att refused)" "permfail:part 1/2: +CMS ERROR: 21 (short message transfer rejected)" \
    "the refused number: one permfail with the network's reason"
like "$(sql "SELECT evidence FROM attempt a JOIN delivery d ON d.id = a.delivery WHERE d.recipient = 'bounced'")" \
    "TP-ST 0x41" "the failed status report is the bounced one's evidence"
ok "status answers within 1 s" responsive

# --- +CMS ERROR: 500 is the modem's trouble: retried -------------------------
ok "the modem starts answering +CMS ERROR: 500" peer_modem_ctl m '{"cmd":"mode","mode":"cms500"}'
exits 0 "send to ok2" send --to ok2 --subject "Test 2" --body-file /dev/null
A2=$(head -1 "$T/out")
ok "ok2's first attempt tempfails" wait_until 20 attempts_ge "$A2" tempfail 1
like "$(att ok2 | head -1)" "CMS ERROR: 500" "with the modem's error"
ok "the modem recovers" peer_modem_ctl m '{"cmd":"mode","mode":"normal"}'
ok "ok2 is delivered on a retry" wait_until 30 state_is "$A2" delivered 1

# --- slow and noisy --------------------------------------------------------------
ok "the modem turns slow and noisy" peer_modem_ctl m '{"cmd":"mode","mode":"garbage","slow_cmgs":3}'
exits 0 "send to ok3" send --to ok3 --subject "Test 3" --body-file /dev/null
A3=$(head -1 "$T/out")
ok "ok3 is delivered through the noise" wait_until 40 state_is "$A3" delivered 1
ok "status answers within 1 s while the modem is slow" responsive
ok "the modem turns quiet and fast" peer_modem_ctl m '{"cmd":"mode","mode":"normal","slow_cmgs":0}'

# --- silence: timeouts, a reset, then it works --------------------------------------
ok "the modem goes silent" peer_modem_ctl m '{"cmd":"mode","mode":"silence"}'
exits 0 "send to ok4" send --to ok4 --subject "Test 4" --body-file /dev/null
A4=$(head -1 "$T/out")
ok "ok4's attempts time out" wait_until 40 attempts_ge "$A4" tempfail 1
ok "status answers within 1 s while the modem is silent" responsive
ok "the modem is reset (AT+CFUN)" wait_until 60 grep -q 'AT+CFUN=1,1' "$T/peers/m.jsonl"
ok "ok4 is delivered after the reset" wait_until 60 state_is "$A4" delivered 1
is "$(grep -c '"ev": *"pin"' "$T/peers/m.jsonl")" 2 "the PIN was entered once more after the reset"
ok "dengond stops" d_stop

# --- a wrong PIN is never tried twice -----------------------------------------------
echo 1111 >"$T/sim.pin"
wport=$(peer_modem_tcp w --pin 4321) || echo "# second modem did not start"
set_key "channel sms" devices "tcp:127.0.0.1:$wport"
ok "dengond starts with the wrong PIN" d_start
ok "the modem is reported down for its PIN" wait_until 20 bash -c \
    "grep -q 'refused the PIN' '$T/dengond.log'"
sleep 4
is "$(grep -c '"ev": *"pin"' "$T/peers/w.jsonl")" 1 \
    "the wrong PIN was tried once, not again"
like "$(grep '"ev": *"pin"' "$T/peers/w.jsonl")" '"tries_left": 2' \
    "the SIM still has two tries left"
dg channels
like "$(grep "^sms@" "$T/out")" "down" "channels shows the modem down"
like "$(grep "^sms@" "$T/out")" "refused the PIN" "with the reason"
ok "dengond stops" d_stop
